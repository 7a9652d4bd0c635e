#!/usr/bin/env python3
"""Where a step's time goes, from `aetrain train|bench --trace FILE` files.

    python3 deploy/trace-summary.py ONE.json [MORE.json ...]

Prints a Markdown table: for each span, the median over the recorded steps (all but the first)
of its own time in a step (its duration minus its children's), in ms, per file and rank. Medians,
because on a shared machine a step that is preempted inflates whichever span it was in; the
medians then add up to about what a step takes undisturbed (the last row, beside the median
step).
"""
import json
import statistics
import sys
from collections import defaultdict

ORDER = ["batch rows", "pack bf16 weights", "X V", "encoder forward", "allreduce column sums", "entropy", "Z W", "decoder forward",
         "Zᵀ G", "decoder backward", "start allreduce dW", "G Wᵀ", "progress", "Xᵀ G_P", "encoder backward",
         "allreduce gradient", "finish allreduces", "gradient barrier", "regularizer", "Adam",
         "update barrier", "step"]
LABEL = {"encoder forward": "encoder forward besides X V (ReLU, bias, column sums)",
         "decoder forward": "decoder forward besides Z W (residual, ‖R‖², G)",
         "decoder backward": "decoder backward besides Zᵀ G (da)",
         "encoder backward": "encoder backward besides its products (G_P, db, ‖X‖²)",
         "step": "step, between its spans"}


def own_times(path):
    """{(file, rank): {span: mean own µs per step}}"""
    events = [e for e in json.load(open(path))["traceEvents"] if e["ph"] == "X" and "step" in e.get("args", {})]
    out = {}
    for pid in sorted({e["pid"] for e in events}):
        mine = sorted((e for e in events if e["pid"] == pid), key=lambda e: (e["ts"], -e["dur"]))
        first = min(e["args"]["step"] for e in mine)
        own, stack = defaultdict(lambda: defaultdict(float)), []  # span -> step -> own µs
        for e in mine:
            while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"]:
                stack.pop()
            e["own"] = e["dur"]
            if stack:
                stack[-1]["own"] -= e["dur"]
            stack.append(e)
        steps = [e for e in mine if e["name"] == "step" and e["args"]["step"] != first]
        for e in mine:
            if e["args"]["step"] != first:
                own[e["name"]][e["args"]["step"]] += e["own"]
        medians = {k: statistics.median(list(v.values()) + [0] * (len(steps) - len(v))) for k, v in own.items()}
        out[pid] = (medians, statistics.median(s["dur"] for s in steps))
    return out


columns, tables = [], []
for path in sys.argv[1:]:
    for rank, (own, step) in own_times(path).items():
        columns.append(f"{path.rsplit('/', 1)[-1]} rank {rank}")
        tables.append((own, step))
print("| span | " + " | ".join(columns) + " |")
print("| --- |" + " --- |" * len(columns))
for name in ORDER:
    if not any(name in own for own, _ in tables):
        continue
    label = LABEL.get(name, name)
    print(f"| {label} | " + " | ".join(f"{own.get(name, 0) / 1000:.3f}" for own, _ in tables) + " |")
print("| sum of the medians | " + " | ".join(f"{sum(own.values()) / 1000:.3f}" for own, _ in tables) + " |")
print("| median step | " + " | ".join(f"{step / 1000:.3f}" for _, step in tables) + " |")
