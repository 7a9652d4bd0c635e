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

import torch

from torch_step import median_ms, model


def main(d, h, batch, threads, steps, precision):
    x, V, W, b, a, opt = model(d, h, batch, threads, decoder_scale=0)
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

    print(f"{median_ms(step, steps):.3f}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:6]), sys.argv[6])
