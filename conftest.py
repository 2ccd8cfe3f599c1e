import importlib.util
import os

# The suite's Triton tests use CPU tensors, run by Triton's CPU interpreter (read when kernels are
# defined), on a machine with a GPU too; benchmarks/gpu_check.py checks the kernels on CUDA.
os.environ.setdefault("TRITON_INTERPRET", "1")

# Doctests of optional backends are collected only where the backend is installed.
collect_ignore = [path for path, module in [("src/adamkit/keras", "keras"), ("src/adamkit/torch", "torch"),
                                            ("src/adamkit/torch/kernels/triton.py", "triton"),
                                            ("src/adamkit/lab", "matplotlib")]
                  if importlib.util.find_spec(module) is None]
