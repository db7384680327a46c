#!/usr/bin/env bash
# The GPU checks, as one script for a machine with CUDA (no network there: peer wheels are carried in .whl/).
#   bash benchmarks/gpu_check.sh            # writes logs to $OUT (or ./runs/gpu)
set -uo pipefail
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export TRITON_INTERPRET=0 SNN_MSI_TEST_DEVICE=cuda PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_kernels.py 2>&1 | tee "$OUT/test_kernels_cuda.txt" | tail -5
python3 benchmarks/bench_neurons.py --device cuda 2>&1 | tee "$OUT/bench_gpu_fp32.txt"
python3 benchmarks/bench_neurons.py --device cuda --dtype float16 --T 4 32 --N 1e6 1e7 2>&1 | tee "$OUT/bench_gpu_fp16.txt"
