#!/usr/bin/env bash
# Fresh Debian 12 machine with the Swift toolchain → installs what is missing, builds aetrain,
# and trains the sheet's dense (λ = 0) and sparse (λ = 1) models on the embedded LFW faces
# with NP ranks (default 2), then compares them and writes runs/report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/common.sh
install_system_packages
swift build -c release
NP=${NP:-2}
extra=()
[ "$NP" -le "$(nproc)" ] || extra+=(--oversubscribe)
for run in "dense 0" "sparse 1"; do
  set -- $run
  echo "== $1 autoencoder (lambda = $2), $NP ranks =="
  mpirun -n "$NP" "${extra[@]}" .build/release/aetrain train --lambda "$2" --overwrite --out "runs/$1"
done
.build/release/aetrain compare runs/dense runs/sparse --out runs/compare
.build/release/aetrain report runs/dense runs/sparse --out runs/report.html
echo "runs/dense and runs/sparse hold each model's weights, metrics and mosaics;"
echo "open runs/report.html in a browser for the curves, the sparsity plot and the filters."
