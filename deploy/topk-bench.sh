#!/usr/bin/env bash
# The TopK step of issue 21's target, in one run on one machine: aetrain's step
# (`aetrain bench --activation topk`, with the dense fp32 GEMM floor of the same shape measured
# in the same run) and PyTorch's TopK step with the usual dense decode (deploy/topk-bench.py),
# at d = 512, h = 8192, batch 1024, k = 32, with the same number of threads. Prints both, the
# ratio of aetrain's step to the floor (target ≤ 0.35) and PyTorch's step over aetrain's.
# Needs PyTorch (pip install torch --index-url https://download.pytorch.org/whl/cpu).
# AETRAIN names the binary (default .build/release/aetrain).
#   deploy/topk-bench.sh [THREADS] [STEPS]       (defaults: the machine's cores, 100)
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/common.sh
THREADS=${1:-$(nproc)}
STEPS=${2:-100}
AETRAIN=${AETRAIN:-.build/release/aetrain}
require_torch
require_aetrain "$AETRAIN"
echo "load average (1 min) at start: $(cut -d' ' -f1 /proc/loadavg)"
"$AETRAIN" bench --activation topk --k 32 --hidden 8192 --batch-size 1024 --image-shape 16x32 --examples 4096 \
  --threads "$THREADS" --steps "$STEPS" --warmup 10 --json > /tmp/aetrain-topk-bench.$$.json
TORCH_MS=$(python3 deploy/topk-bench.py 512 8192 1024 32 "$THREADS" "$STEPS")
python3 - "$TORCH_MS" /tmp/aetrain-topk-bench.$$.json <<'PY'
import json, sys
torch_ms = float(sys.argv[1])
r = json.load(open(sys.argv[2]))
print(f"aetrain topk step {r['ms_per_step']:.1f} ms, GEMM floor {r['gemm_floor_ms']:.1f} ms: ratio {r['ms_per_step'] / r['gemm_floor_ms']:.3f} (target <= 0.35)")
print(f"PyTorch topk step (dense decode) {torch_ms:.1f} ms: PyTorch / aetrain = {torch_ms / r['ms_per_step']:.2f}")
PY
rm -f /tmp/aetrain-topk-bench.$$.json
echo "load average (1 min) at end: $(cut -d' ' -f1 /proc/loadavg)"
