"""PyTorch's TopK sparse autoencoder step, the usual dense decode, at the shape of
`aetrain bench --activation topk`: the comparison deploy/topk-bench.sh prints.

    python3 deploy/topk-bench.py D H BATCH K THREADS STEPS     prints ms per step (median of blocks)

One step, as SAE trainers write it: pre = x @ V + b; TopK of relu(pre) per row (torch.topk);
z scattered dense; x_hat = z @ W + a; loss = mean_i |x_i - x_hat_i|^2; backward; Adam.
"""
import sys

import torch

from torch_step import median_ms, model


def main(d, h, batch, k, threads, steps):
    x, V, W, b, a, opt = model(d, h, batch, threads, decoder_scale=h ** -0.5)

    def step(i):
        xb = x[(i % 4) * batch:(i % 4 + 1) * batch]
        pre = torch.relu(xb @ V + b)
        values, indices = pre.topk(k, dim=1)
        z = torch.zeros_like(pre).scatter(1, indices, values)
        loss = ((z @ W + a - xb) ** 2).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    print(f"{median_ms(step, steps):.3f}")


if __name__ == "__main__":
    main(*map(int, sys.argv[1:7]))
