#!/usr/bin/env bash
# The GPU checks, as one command for a machine with CUDA (no network there: peer wheels are carried in .whl/):
# the CUDA tests, then every GPU benchmark, each log in $OUT (default ./runs/gpu), a summary in $OUT/summary.txt.
#
#   bash benchmarks/gpu_check.sh                  # everything (about 10 minutes on one H100 / H200)
#   QUICK=1 bash benchmarks/gpu_check.sh          # tests + the issue-15 targets only (no torch.compile rows)
#
# Issue-15 targets read from the summary: bench_train "LIF/ReLU" <= 1.15 for float32 and bfloat16; bench_layer
# "lif" under "graph" <= 0.1 ms at T=4, N=1e4.
set -uo pipefail
OUT=${OUT:-runs/gpu}
QUICK=${QUICK:-0}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export TRITON_INTERPRET=0 SNN_MSI_TEST_DEVICE=cuda PYTHONUNBUFFERED=1
run() {  # run NAME CMD...: log to $OUT/NAME.txt, show the tail, never stop the script
  local name=$1
  shift
  echo "== $name: $*" | tee -a "$OUT/commands.txt"
  timeout "${STEP_TIMEOUT:-900}" "$@" >"$OUT/$name.txt" 2>&1
  echo "   exit $? ($(wc -l <"$OUT/$name.txt") lines)"
  tail -n 4 "$OUT/$name.txt"
}
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
} 2>&1 | tee "$OUT/gpu.txt"

# correctness first: Triton compiled for the GPU against the PyTorch reference (eager and custom-op paths),
# torch.compile through the Triton op, CUDA-graph capture of a layer, the tiny network under reduce-overhead
run test_cuda python3 -m pytest -q -p no:cacheprovider tests/test_kernels.py tests/test_compile.py -m "not slow"

# the local executor spreads parallel runs over the GPUs (one tiny run per GPU, at once; devices must differ)
run executor_gpus python3 benchmarks/check_executor_gpus.py

# whole training step, paper network: LIF against its ReLU twin (the issue-15 target), float32 and bfloat16
run bench_train python3 benchmarks/bench_train.py --device cuda --dtype float32 bfloat16 --rounds 5 --steps 6
# one layer fwd+bwd: eager, CUDA graph, compile (reduce-overhead); T=4, N=1e3..1e6
if [ "$QUICK" = 1 ]; then
  run bench_layer python3 benchmarks/bench_layer.py --device cuda --N 1e4 1e5
else
  run bench_layer python3 benchmarks/bench_layer.py --device cuda --compile
  run bench_layer_bf16 python3 benchmarks/bench_layer.py --device cuda --dtype bfloat16 --N 1e4 1e6
  # the same step compiled (fullgraph, CUDA graphs through Inductor), LIF against ReLU
  run bench_train_compile python3 benchmarks/bench_train.py --device cuda --dtype float32 bfloat16 --rows relu lif \
    --compile --compile-mode reduce-overhead --no-epoch
  run bench_neurons_fp32 python3 benchmarks/bench_neurons.py --device cuda
  run bench_neurons_bf16 python3 benchmarks/bench_neurons.py --device cuda --dtype bfloat16 --T 4 32 --N 1e4 1e6 1e7
fi

{
  echo "# summary $(date -u) on $(head -n 3 "$OUT/gpu.txt" | tail -n 1)"
  grep -h -E "passed|failed|error" "$OUT/test_cuda.txt" | tail -n 2
  grep -h -E "GPU\(s\)|distinct|FAILED" "$OUT/executor_gpus.txt"
  grep -h -E "^# training step|/ReLU|^relu|^lif" "$OUT"/bench_train*.txt
  grep -h -E "^# bench_layer|^ *4 +1e\+04" "$OUT"/bench_layer*.txt
} | tee "$OUT/summary.txt"
