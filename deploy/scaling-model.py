#!/usr/bin/env python3
"""The scaling model of docs/scaling.md, as tables: per-step time of P ranks, one
per node, for strong scaling (the sheet's global batch of 100) and weak scaling (100 examples per
rank), on the networks below. Model predictions from measured constants; edit CONSTANTS to
re-run with new measurements (deploy/scaling-bench.sh prints them).

    T(P) = compute(rows per rank) + allreduce(gradient, P) + allreduce(column sums, P)
    compute(b) = c0 + c1·b, a line fitted to the measured steps below
    allreduce(n bytes, P) = 2·⌈log2 P⌉·α + 2·(P−1)/P · n·β   (Rabenseifner: reduce-scatter by
                            recursive halving, allgather by recursive doubling; what Open MPI 4.1's
                            tuned component picks for a sum of more than 256 KB at every P)
    column sums (h floats, 1.6 KB): ⌈log2 P⌉·α (recursive doubling)
"""
import math
import random

# Measured with deploy/scaling-bench.sh (when, and at what load: docs/scaling.md, "Constants"),
# two rounds averaged: 1 process × 1 BLAS thread, real size (d = 1036, h = 400), ms per step at
# this many rows (Adam and the element-wise passes included).
COMPUTE_MS = {100: 3.90, 50: 2.20, 25: 1.31, 13: 0.89, 7: 0.76, 4: 0.48, 2: 0.49}
# Adam alone on one core, ms per step (the same runs; the median of the 14).
ADAM_MS = 0.17
N_BYTES = 4 * (2 * 400 * 1036 + 400 + 1036 + 5)  # dV, dW, db, da and five partial sums, float32
H_BYTES = 4 * 400
NETWORKS = {  # name: (α in ms, β in ms per MB)
    "10 GbE (α 20 µs, 1.25 GB/s; assumed)": (0.020, 0.8),
    "25 GbE (α 10 µs, 3.1 GB/s; assumed)": (0.010, 0.32),
}


def fit():
    """compute(b) = c0 + c1·b, least squares over the measured points: c0 is what a step costs
    whatever its rows (Adam, the element-wise passes over the parameters, streaming V and W), c1
    the cost of one more row."""
    xs, ys = list(COMPUTE_MS), list(COMPUTE_MS.values())
    k, sx, sy = len(xs), sum(xs), sum(ys)
    sxx, sxy = sum(x * x for x in xs), sum(x * y for x, y in zip(xs, ys))
    c1 = (k * sxy - sx * sy) / (k * sxx - sx * sx)
    return (sy - c1 * sx) / k, c1


C0, C1 = fit()


def compute(rows):
    return C0 + C1 * rows


def allreduce(nbytes, p, alpha, beta):
    if p == 1:
        return 0.0
    return 2 * math.ceil(math.log2(p)) * alpha + 2 * (p - 1) / p * nbytes / 1e6 * beta


def busiest(m, p, trials=4000, seed=1):
    """The expected rows of the busiest rank when each of m rows falls on a rank at random
    (the global sampler before the balanced batch: each rank computed the rows of the batch in
    its shard)."""
    rng = random.Random(seed)
    total = 0
    for _ in range(trials):
        counts = [0] * p
        for _ in range(m):
            counts[rng.randrange(p)] += 1
        total += max(counts)
    return total / trials


def main():
    ps = [1, 2, 4, 8, 16, 32, 64]
    print(f"compute(b) = {C0:.2f} ms + {C1:.4f} ms × b (fit to {COMPUTE_MS})")
    for name, (alpha, beta) in NETWORKS.items():
        print(f"\n{name}")
        print("| P | rows per rank | compute | allreduce | strong: T(P) | speed-up | unbalanced | weak: T(P) | weak efficiency |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        t1 = compute(100)
        for p in ps:
            rows = math.ceil(100 / p)
            comm = allreduce(N_BYTES, p, alpha, beta) + (math.ceil(math.log2(p)) * alpha if p > 1 else 0)
            strong = compute(rows) + comm
            today = busiest(100, p) if p > 1 else 100
            strong_today = compute(today) + comm
            weak = compute(100) + comm
            print(f"| {p} | {rows} | {compute(rows):.1f} | {comm:.2f} | {strong:.1f} | {t1 / strong:.2f}× "
                  f"| {today:.0f} rows: {strong_today:.1f} ms | {weak:.1f} | {t1 / weak:.0%} |")
        print("\nOptimizer sharding saves (1 - 1/P)·Adam:",
              ", ".join(f"P = {p}: {(1 - 1 / p) * ADAM_MS:.2f} ms = {(1 - 1 / p) * ADAM_MS / (compute(math.ceil(100 / p)) + allreduce(N_BYTES, p, alpha, beta)):.0%}"
                        f" of the strong-scaling step, {(1 - 1 / p) * ADAM_MS / (compute(100) + allreduce(N_BYTES, p, alpha, beta)):.0%} of the weak"
                        for p in [4, 16, 64]))


if __name__ == "__main__":
    main()
