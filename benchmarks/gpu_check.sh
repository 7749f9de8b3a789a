#!/usr/bin/env bash
# The GPU checks in one go, under 5 minutes on one GPU: the CUDA tests, then the throughput benchmark on the GPU.
#   bash benchmarks/gpu_check.sh            # from the repository root, on a machine where torch sees a GPU
# Exits non-zero if torch sees no GPU, a test fails, or a step runs past its time limit.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'torch sees no CUDA device here')"
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
timeout 150 python -m pytest -q -x tests/test_cuda.py
timeout 140 python benchmarks/train_throughput.py --device cuda --quick
