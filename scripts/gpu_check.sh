#!/usr/bin/env bash
# The GPU checks in one short run, for a machine with an NVIDIA GPU, CuPy and torch already
# installed (e.g. a lent device): the CUDA kernels against the CPU oracle (bit-identical for the
# same seed), then the injection benchmark on the GPU, including the XOR kernel's bandwidth
# against clone()'s. Output also goes to $OUT/gpu_check.log when OUT is set.
#
#     bash scripts/gpu_check.sh            # about 2-4 minutes on an H100/H200
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-/tmp}/gpu_check.log"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python -c "import cupy, torch; print('cupy', cupy.__version__, 'torch', torch.__version__, torch.cuda.is_available())"
  pip install -q --no-deps -e . && \
  python -m pytest -q -p no:cacheprovider -m gpu tests/kernels/test_cuda.py
  echo "pytest exit status: $?"
  python scripts/bench_inject.py --device cuda --repeats 5
} 2>&1 | tee "$log"
