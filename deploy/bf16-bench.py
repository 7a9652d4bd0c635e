"""PyTorch's step of the sheet's objective at an SAE shape, in fp32 or under bf16 autocast:
the comparison deploy/bf16-bench.sh prints beside `aetrain bench --precision bf16`.

    python3 deploy/bf16-bench.py D H BATCH THREADS STEPS fp32|bf16     prints ms per step (median of blocks)

One step, as the sheet writes it (λ = 1, ε = 0.01, η = 1): z = relu(x V + b); x_hat = z W + a;
loss = mean_i |x_i - x_hat_i|^2 + λ mean_i |z_i|_1 + ε Σ_j 1/mean_i z_ij + η |W|^2; backward;
Adam. With bf16 the forward runs under torch.autocast('cpu', dtype=torch.bfloat16), as SAELens
and sparsify train: the products take bf16 inputs, the weights and Adam stay fp32.
"""
import contextlib
import sys
import time

import torch


def main(d, h, batch, threads, steps, precision):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(4 * batch, d)
    V = (torch.randn(d, h) / d ** 0.5).requires_grad_()
    W = torch.zeros(h, d, requires_grad=True)
    b = torch.zeros(h, requires_grad=True)
    a = torch.zeros(d, requires_grad=True)
    opt = torch.optim.Adam([V, W, b, a], lr=1e-4)
    lam, eps, eta = 1.0, 0.01, 1.0
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

    def step(i):
        xb = x[(i % 4) * batch:(i % 4 + 1) * batch]
        with cast:
            z = torch.relu(xb @ V + b)
            x_hat = z @ W + a
        z, x_hat = z.float(), x_hat.float()
        loss = ((x_hat - xb) ** 2).sum(1).mean() + lam * z.sum(1).mean() \
            + eps * (1 / z.mean(0).clamp_min(1e-6)).sum() + eta * (W ** 2).sum()
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
    main(*map(int, sys.argv[1:6]), sys.argv[6])
