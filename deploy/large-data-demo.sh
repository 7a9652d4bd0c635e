#!/usr/bin/env bash
# A file larger than one rank should hold: writes GB gigabytes (default 3.5) of synthetic
# float32 activations, N×512, as a .safetensors file (in chunks, never whole in memory),
# trains a sparse autoencoder on it with NP ranks (default 2) for a few iterations, and prints
# each rank's peak resident set (GNU time's "Maximum resident set size"), then deletes the file.
#
#   deploy/large-data-demo.sh                 # 3.5 GB in $TMPDIR (or /tmp), 2 ranks
#   GB=8 NP=4 DIR=/scratch deploy/large-data-demo.sh
#
# Each rank reads only its own rows (pread, 8 MiB at a time), so its peak is its shard
# (GB / NP) plus the model, not the file.
set -euo pipefail
cd "$(dirname "$0")/.."
GB=${GB:-3.5}
NP=${NP:-2}
D=${D:-512}
DIR=${DIR:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$DIR/aetrain-large.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/activations.safetensors"

python3 - "$data" "$GB" "$D" <<'EOF'
# Activations as SAEs see them: each row a sparse non-negative mix of 8 of 4096 directions, plus noise.
import json, struct, sys, numpy as np
path, gb, d = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
n = int(gb * 2**30) // (4 * d)
rng = np.random.default_rng(0)
directions = rng.normal(size=(4096, d)).astype('<f4') / np.sqrt(d)
header = json.dumps({'activations': {'dtype': 'F32', 'shape': [n, d], 'data_offsets': [0, 4 * n * d]}}).encode()
header += b' ' * ((8 - len(header) % 8) % 8)
with open(path, 'wb') as f:
    f.write(struct.pack('<Q', len(header)) + header)
    for start in range(0, n, 16384):
        m = min(16384, n - start)
        idx = rng.integers(0, 4096, size=(m, 8))
        x = np.einsum('mk,mkd->md', rng.exponential(size=(m, 8)).astype('<f4'), directions[idx])
        x += 0.05 * rng.normal(size=(m, d)).astype('<f4')
        f.write(x.astype('<f4').tobytes())
print(f'wrote {path}: {n} x {d} float32, {(8 + len(header) + 4 * n * d) / 2**30:.2f} GiB')
EOF
ls -l "$data"

extra=()
[ "$NP" -le "$(nproc)" ] || extra+=(--oversubscribe)
echo "load before: $(uptime)"
mpirun -n "$NP" "${extra[@]}" /usr/bin/time -f "rank peak RSS: %M KiB, %e s wall" \
  .build/release/aetrain train --data "$data" --hidden 512 --lambda 0.5 --batch-size 1024 --iterations 200 \
  --log-every 50 --out "$work/run"
ls "$work/run"
