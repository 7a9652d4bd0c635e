#!/usr/bin/env bash
# bf16 against fp32 in one run on one machine (issue: products past the fp32 floor):
#   - aetrain's step at the SAE shape (d = 512, h = 8192, batch 1024, relu, λ = 1) in fp32 and in
#     bf16, each with the dense fp32 GEMM floor of the same shape measured in its own run;
#   - the same at the sheet's real size (d = 1036, h = 400, batch 100);
#   - PyTorch's step of the same objective at the SAE shape, fp32 and under bf16 autocast
#     (deploy/bf16-bench.py), with the same threads.
# Prints each step, its ratio to the floor (targets: bf16 ≤ 0.6 at the SAE shape, ≤ 0.85 at the
# sheet's) and PyTorch's autocast step over aetrain's bf16 step (target ≥ 1.5).
# Needs PyTorch (pip install torch). AETRAIN names the binary (default .build/release/aetrain).
#   deploy/bf16-bench.sh [THREADS] [STEPS]       (defaults: the machine's cores, 50)
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/common.sh
THREADS=${1:-$(nproc)}
STEPS=${2:-50}
AETRAIN=${AETRAIN:-.build/release/aetrain}
require_torch
require_aetrain "$AETRAIN"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "load average (1 min) at start: $(cut -d' ' -f1 /proc/loadavg)"
SAE=(--lambda 1 --hidden 8192 --batch-size 1024 --image-shape 16x32 --examples 4096)
SHEET=(--lambda 1)
for p in fp32 bf16; do
  "$AETRAIN" bench "${SAE[@]}" --precision "$p" --threads "$THREADS" --steps "$STEPS" --warmup 5 --json > "$TMP/sae-$p.json"
  "$AETRAIN" bench "${SHEET[@]}" --precision "$p" --threads "$THREADS" --steps $((STEPS * 20)) --warmup 50 --json > "$TMP/sheet-$p.json"
done
TORCH_FP32=$(python3 deploy/bf16-bench.py 512 8192 1024 "$THREADS" "$STEPS" fp32)
TORCH_BF16=$(python3 deploy/bf16-bench.py 512 8192 1024 "$THREADS" "$STEPS" bf16)
python3 - "$TMP" "$TORCH_FP32" "$TORCH_BF16" <<'PY'
import json, sys
tmp, torch_fp32, torch_bf16 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
for shape, target in [("sae", 0.6), ("sheet", 0.85)]:
    for p in ["fp32", "bf16"]:
        r = json.load(open(f"{tmp}/{shape}-{p}.json"))
        print(f"{shape:5} d {r['d']:4} h {r['hidden']:4} batch {r['batch_size']:4} {p}: step {r['ms_per_step']:8.2f} ms, "
              f"fp32 GEMM floor {r['gemm_floor_ms']:8.2f} ms: ratio {r['ms_per_step'] / r['gemm_floor_ms']:.3f}"
              + (f" (target <= {target})" if p == "bf16" else ""))
bf16 = json.load(open(f"{tmp}/sae-bf16.json"))["ms_per_step"]
print(f"PyTorch at the SAE shape: fp32 {torch_fp32:.1f} ms, bf16 autocast {torch_bf16:.1f} ms: "
      f"PyTorch autocast / aetrain bf16 = {torch_bf16 / bf16:.2f} (target >= 1.5)")
PY
