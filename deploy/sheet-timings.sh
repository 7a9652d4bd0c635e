#!/usr/bin/env bash
# The sheet end to end: wall time of its two runs (λ = 0 and λ = 1, 10,001 iterations, the
# sheet's defaults) on the embedded faces and on synthetic data of the real size (13,233 × 37×28),
# as 1 process and as `mpirun -n 2`, ROUNDS times (default 1). For each: the wall time of the
# whole command, the training loop's own seconds (metrics.jsonl), the seconds from process start
# to the first iteration (`seconds_to_first_step`, rank 0) and the 1-minute load before it.
# AETRAIN names the binary (default .build/release/aetrain); NP the ranks (default 2); PRECISION
# the products (fp32, default, or bf16).
#   deploy/sheet-timings.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-1}
NP=${NP:-2}
PRECISION=${PRECISION:-fp32}
AETRAIN=$(realpath "${AETRAIN:-.build/release/aetrain}")
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# one DATA-LABEL LAYOUT λ LAUNCHER...
one() {
  local data=$1 layout=$2 lambda=$3 l t0 t1; shift 3
  local args=(train --quiet --lambda "$lambda" --out "$OUT/run" --overwrite --precision "$PRECISION")
  [ "$data" = embedded ] || args+=(--data "$data")
  l=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s.%N)
  "$@" "$AETRAIN" "${args[@]}" > /dev/null
  t1=$(date +%s.%N)
  python3 - "$OUT/run" "$data" "$layout" "$lambda" "$t0" "$t1" "$l" <<'PY'
import json, sys
run, data, layout, lam, t0, t1, l = sys.argv[1:]
m = [json.loads(x) for x in open(f"{run}/metrics.jsonl")]
print(f"{data:<24} {layout:<12} λ = {lam}  wall {float(t1) - float(t0):6.1f} s  loop {m[-1]['seconds']:6.1f} s"
      f"  to first step {m[0].get('seconds_to_first_step', float('nan')):5.2f} s  iterations {m[-1]['iteration'] + 1}  load {l}")
PY
}

for round in $(seq 1 "$ROUNDS"); do
  echo "# round $round, $(date -u +%FT%TZ), $(uptime)"
  for data in embedded synthetic:13233,37,28; do
    for lambda in 0 1; do
      one "$data" "1 process" "$lambda"
      one "$data" "mpirun -n $NP" "$lambda" mpirun -n "$NP"
    done
  done
done
