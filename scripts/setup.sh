#!/usr/bin/env bash
# Set up .venv on a fresh machine (idempotent): the CPU build of PyTorch, Triton for
# its CPU interpreter, and adamkit with every extra the lab and the tests use.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  "torch==2.13.0" "triton==3.6.0" -e ".[all]"
