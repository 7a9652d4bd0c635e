"""PyTorch's TopK sparse autoencoder step, the usual dense decode, at the shape of
`aetrain bench --activation topk`: the comparison deploy/topk-bench.sh prints.

    python3 deploy/topk-bench.py D H BATCH K THREADS STEPS     prints ms per step (median of blocks)

One step, as SAE trainers write it: pre = x @ V + b; TopK of relu(pre) per row (torch.topk);
z scattered dense; x_hat = z @ W + a; loss = mean_i |x_i - x_hat_i|^2; backward; Adam.
"""
import sys
import time

import torch


def main(d, h, batch, k, threads, steps):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(4 * batch, d)
    V = (torch.randn(d, h) / d ** 0.5).requires_grad_()
    W = (torch.randn(h, d) / h ** 0.5).requires_grad_()
    b = torch.zeros(h, requires_grad=True)
    a = torch.zeros(d, requires_grad=True)
    opt = torch.optim.Adam([V, W, b, a], lr=1e-4)

    def step(i):
        xb = x[(i % 4) * batch:(i % 4 + 1) * batch]
        pre = torch.relu(xb @ V + b)
        values, indices = pre.topk(k, dim=1)
        z = torch.zeros_like(pre).scatter(1, indices, values)
        loss = ((z @ W + a - xb) ** 2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(max(3, steps // 10)):
        step(i)
    blocks, per = 10, max(1, steps // 10)
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for i in range(per):
            step(i)
        times.append((time.perf_counter() - start) / per * 1000)
    times.sort()
    print(f"{(times[4] + times[5]) / 2:.3f}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:7]))
