#!/usr/bin/env bash
# The constants of the scaling model (docs/scaling.md) and the communication figures of
# docs/performance.md ("Hiding communication"), ROUNDS rounds (default 3), each figure with the 1-minute load
# average beside it:
#   - the step of 1 process × 1 BLAS thread at the batch a rank gets when P ranks share the
#     sheet's batch of 100 (100, 50, 25, 13, 7, 4, 2 rows): the model's compute term;
#   - allreduce latency α, ms per MB β and the 4 MB time (`aetrain bench --allreduce`): shared
#     memory (mpirun -n 2), 2 namespace hosts × 1 rank and 2 hosts × 2 ranks over TCP;
#   - the step at the sheet's real size (`aetrain bench`, --overlap never and always; on one node
#     also --gradient-sum allreduce beside the default shared-memory sum): shared memory and
#     2 hosts × 1 rank;
#   - `aetrain train` ms per step (1000 iterations, synthetic real-size data, --overlap never,
#     always and auto, and what auto chose): 2 hosts × 1 rank with the machine's cores split
#     between the hosts (deploy/netns-cluster.sh's default), and with every core shared.
# Needs root (network namespaces). AETRAIN names the binary (default .build/release/aetrain).
#   deploy/scaling-bench.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
AETRAIN=$(realpath "${AETRAIN:-.build/release/aetrain}")
export AET_NETNS_PREFIX=${AET_NETNS_PREFIX:-aeb} AET_NETNS_SUBNET=${AET_NETNS_SUBNET:-10.76.0}
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
CLUSTER="bash deploy/netns-cluster.sh"
OUT=$(mktemp -d)
trap '$CLUSTER down >/dev/null 2>&1 || true; rm -rf "$OUT"' EXIT
REAL=synthetic:13233,37,28

load() { cut -d' ' -f1 /proc/loadavg; }

# allreduce LABEL LAUNCHER...
allreduce() {
  local label=$1 l; shift; l=$(load)
  "$@" "$AETRAIN" bench --allreduce --json > "$OUT/r.json"
  python3 - "$OUT/r.json" "$label" "$l" <<'PY'
import json, sys
f, label, l = sys.argv[1:]
r = json.load(open(f)); p = {int(b): ms for b, ms in r["points"]}
q = {int(b): ms for b, ms in r["fastest_points"]}
print(f"{label:<34} allreduce  median: α {r['alpha_ms']*1e3:6.1f} µs  β {r['ms_per_mb']:.3f} ms/MB ({1/r['ms_per_mb']:.2f} GB/s)"
      f"  4 MB {p[4194304]:.3f} ms;  fastest: α {r['fastest_alpha_ms']*1e3:6.1f} µs  β {r['fastest_ms_per_mb']:.3f} ms/MB"
      f" ({1/r['fastest_ms_per_mb']:.2f} GB/s)  4 MB {q[4194304]:.3f} ms  load {l}")
PY
}

# step LABEL OVERLAP GRADIENT-SUM LAUNCHER...
step() {
  local label=$1 overlap=$2 sum=$3 l; shift 3; l=$(load)
  "$@" "$AETRAIN" bench --json --steps 300 --warmup 30 --overlap "$overlap" --gradient-sum "$sum" > "$OUT/r.json"
  python3 - "$OUT/r.json" "$label" "$overlap" "$l" <<'PY'
import json, sys
f, label, overlap, l = sys.argv[1:]
r = json.load(open(f))
print(f"{label:<34} bench {overlap:<6} {r['ms_per_step']:7.3f} ms/step  exposed comm. {r['exposed_communication_ms']:6.3f} ms"
      f"  floor {r['gemm_floor_ms']:.3f} ms  overlap {'on' if r['overlap'] else 'off'}  gradient sum {r['gradient_sum']}  load {l}")
PY
}

# train LABEL OVERLAP LAUNCHER...
train() {
  local label=$1 overlap=$2 l; shift 2; l=$(load)
  "$@" "$AETRAIN" train --quiet --data "$REAL" --iterations 1000 --log-every 100 --overlap "$overlap" \
    --out "$OUT/run" --overwrite > /dev/null
  python3 - "$OUT/run" "$label" "$overlap" "$l" <<'PY'
import json, sys
run, label, overlap, l = sys.argv[1:]
m = [json.loads(x) for x in open(f"{run}/metrics.jsonl")]
c = json.load(open(f"{run}/config.json"))
ms = (m[-1]["seconds"] - m[0]["seconds"]) / (m[-1]["iteration"] - m[0]["iteration"]) * 1e3
on = "on" if c["execution"]["overlapEnabled"] else "off"
print(f"{label:<34} train {overlap:<6} {ms:7.3f} ms/step  overlap {on}  {c['blasThreadsPerRank']} BLAS thread(s)  load {l}")
PY
}

# compute ROWS: 1 process, 1 thread, the real size at ROWS rows per step.
compute() {
  local rows=$1 l; l=$(load)
  "$AETRAIN" bench --json --threads 1 --batch-size "$rows" --steps 300 --warmup 30 > "$OUT/r.json"
  python3 - "$OUT/r.json" "$rows" "$l" <<'PY'
import json, sys
f, rows, l = sys.argv[1:]
r = json.load(open(f))
print(f"{'1 process × 1 thread':<34} batch {rows:>4} {r['ms_per_step']:7.3f} ms/step  of which Adam {r['optimizer_ms']:.3f} ms"
      f"  floor (2 threads) {r['gemm_floor_ms']:.3f} ms  load {l}")
PY
}

for round in $(seq 1 "$ROUNDS"); do
  echo "# round $round, $(date -u +%FT%TZ), $(uptime)"
  for rows in 100 50 25 13 7 4 2; do compute "$rows"; done
  allreduce "shared memory, 2 ranks" mpirun -n 2
  for o in never always; do step "shared memory, 2 ranks" "$o" auto mpirun -n 2; done
  step "shared memory, 2 ranks" never allreduce mpirun -n 2
  $CLUSTER up 2 1 > /dev/null
  allreduce "2 hosts × 1 rank (cores split)" $CLUSTER mpirun -n 2
  for o in never always; do step "2 hosts × 1 rank (cores split)" "$o" auto $CLUSTER mpirun -n 2; done
  for o in never always auto; do train "2 hosts × 1 rank (cores split)" "$o" $CLUSTER mpirun -n 2; done
  $CLUSTER up 2 2 > /dev/null
  allreduce "2 hosts × 2 ranks (cores split)" $CLUSTER mpirun -n 4
  AET_NETNS_CORES=shared $CLUSTER up 2 1 > /dev/null
  for o in never always auto; do train "2 hosts × 1 rank (cores shared)" "$o" $CLUSTER mpirun -n 2; done
  $CLUSTER down
done
