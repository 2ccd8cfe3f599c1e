import importlib.util
import os

# Without a GPU, Triton kernels run in Triton's CPU interpreter (read when kernels are defined).
if importlib.util.find_spec("torch"):
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")

# Doctests of optional backends are collected only where the backend is installed.
collect_ignore = [path for path, module in [("src/adamkit/keras", "keras"), ("src/adamkit/torch", "torch"),
                                            ("src/adamkit/torch/kernels/triton.py", "triton"),
                                            ("src/adamkit/lab", "matplotlib")]
                  if importlib.util.find_spec(module) is None]
