#!/usr/bin/env python3
"""Trains a grid of sparse autoencoders on one dataset and tabulates the sparsity frontier:
held-out explained variance against L0, per architecture.

    python3 deploy/frontier-grid.py --data FILE --out DIR [options]

The grid (each list comma-separated; --architectures picks which of the four run):
  relu        the sheet's model, one run per --relu-lambdas value (--lambda)
  topk        --activation topk --k K, one run per --topk-k value
  batchtopk   --activation batchtopk --k K, one run per --batchtopk-k value
  jumprelu    --activation jumprelu --lambda L, one run per --jumprelu-lambdas value
Every run also gets --data, --hidden, --iterations, --eval-fraction, --seed and --quiet, and
the words of --train-args (e.g. "--normalize unit-norm --learning-rate 0.001"); with
--ranks R > 1 it runs under mpirun -n R.

Each run goes to DIR/runs/ARCH-SETTING. A run already finished there (its metrics.jsonl
reached the last iteration) is kept, not trained again, so an interrupted grid continues where
it stopped; an unfinished one is refused. From each run's last metrics.jsonl line it takes
eval_l0 and eval_explained_variance (the held-out rows), and writes DIR/frontier.tsv
(architecture, setting, l0, heldout_ev, train_l0, train_ev, run) and DIR/frontier.svg
(deploy/frontier-plot.py). --dry-run prints the train commands and runs nothing.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def values(text, kind, flag):
    try:
        out = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        sys.exit(f"error: {flag} {text}: expected comma-separated numbers")
    return out


def grid(a):
    """(architecture, setting label, train flags) of every run, in order."""
    runs = []
    for arch in a.architectures:
        if arch == "relu":
            runs += [("relu", f"lambda{v:g}", ["--lambda", f"{v:g}"]) for v in values(a.relu_lambdas, float, "--relu-lambdas")]
        elif arch in ("topk", "batchtopk"):
            ks = values(a.topk_k if arch == "topk" else a.batchtopk_k, int, f"--{arch}-k")
            runs += [(arch, f"k{k}", ["--activation", arch, "--k", str(k)]) for k in ks]
        elif arch == "jumprelu":
            runs += [("jumprelu", f"lambda{v:g}", ["--activation", "jumprelu", "--lambda", f"{v:g}"])
                     for v in values(a.jumprelu_lambdas, float, "--jumprelu-lambdas")]
        else:
            sys.exit(f"error: --architectures: unknown architecture {arch!r} (relu, topk, batchtopk, jumprelu)")
    return runs


def last_record(run):
    """The last line of run/metrics.jsonl, or None."""
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    last = None
    with open(path) as f:
        for line in f:
            if line.strip():
                last = json.loads(line)
    return last


def main():
    ap = argparse.ArgumentParser(description="A grid of aetrain runs and their held-out EV against L0.")
    ap.add_argument("--data", required=True, help="the dataset (any --data aetrain reads)")
    ap.add_argument("--out", required=True, help="the grid's directory: runs/, frontier.tsv, frontier.svg")
    ap.add_argument("--aetrain", default=os.path.join(HERE, "..", ".build", "release", "aetrain"))
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--iterations", type=int, default=4001)
    ap.add_argument("--eval-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--architectures", default="relu,topk,batchtopk,jumprelu")
    ap.add_argument("--relu-lambdas", default="0.5,1,2,4")
    ap.add_argument("--topk-k", default="8,16,32,64")
    ap.add_argument("--batchtopk-k", default="16,32,64")
    ap.add_argument("--jumprelu-lambdas", default="0.001,0.003,0.01")
    ap.add_argument("--train-args", default="", help="more train flags for every run, one string")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    a = ap.parse_args()
    a.architectures = [s.strip() for s in a.architectures.split(",") if s.strip()]
    runs = grid(a)
    if not a.dry_run and not os.access(a.aetrain, os.X_OK):
        sys.exit(f"error: --aetrain {a.aetrain} is not an executable (build with swift build -c release, or name the binary)")
    launcher = []
    if a.ranks > 1:
        launcher = ["mpirun", "-n", str(a.ranks)] + (["--oversubscribe"] if a.ranks > (os.cpu_count() or 1) else [])
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1") if os.getuid() == 0 else None

    table = []
    for arch, setting, flags in runs:
        run = os.path.join(a.out, "runs", f"{arch}-{setting}")
        command = launcher + [a.aetrain, "train", "--quiet", "--data", a.data, "--out", run, "--hidden", str(a.hidden),
                              "--iterations", str(a.iterations), "--eval-fraction", f"{a.eval_fraction:g}",
                              "--seed", str(a.seed)] + flags + shlex.split(a.train_args)
        if a.dry_run:
            print(shlex.join(command))
            continue
        last = last_record(run)
        if last is not None and last.get("iteration") == a.iterations - 1:
            print(f"{arch} {setting}: finished before, kept ({run})")
        elif os.path.exists(run):
            sys.exit(f"error: {run} exists but did not finish; remove it, or continue it with aetrain train --resume {run}")
        else:
            os.makedirs(os.path.dirname(run), exist_ok=True)
            print(f"{arch} {setting}: " + shlex.join(command), flush=True)
            r = subprocess.run(command, env=env)
            if r.returncode != 0:
                sys.exit(f"error: {arch} {setting}: aetrain train exited with {r.returncode}")
            last = last_record(run)
        if last is None or "eval_l0" not in last or "eval_explained_variance" not in last:
            sys.exit(f"error: {run}/metrics.jsonl: its last line has no eval_l0 and eval_explained_variance (was it trained with --eval-fraction?)")
        table.append((arch, setting, last["eval_l0"], last["eval_explained_variance"], last.get("l0"), last.get("explained_variance"),
                      os.path.relpath(run, a.out)))
    if a.dry_run:
        return
    tsv = os.path.join(a.out, "frontier.tsv")
    with open(tsv, "w") as f:
        f.write("architecture\tsetting\tl0\theldout_ev\ttrain_l0\ttrain_ev\trun\n")
        for row in table:
            f.write("\t".join("" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)) for v in row) + "\n")
    print(f"wrote {tsv}")
    r = subprocess.run([sys.executable, os.path.join(HERE, "frontier-plot.py"), tsv, os.path.join(a.out, "frontier.svg")])
    sys.exit(r.returncode)


if __name__ == "__main__":
    main()
