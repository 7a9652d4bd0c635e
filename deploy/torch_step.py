"""What deploy/topk-bench.py and deploy/bf16-bench.py share: the sheet's starting weights at an
SAE shape, and the timing of a step as the median of blocks, as `aetrain bench` times its own.
"""
import time

import torch


def model(d, h, batch, threads, decoder_scale):
    """4 batches of random rows, V ~ N(0, 1/d), W (h, d) at decoder_scale · N(0, 1) (0: zeros),
    b = a = 0, and Adam at lr 1e-4, on `threads` threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(4 * batch, d)
    V = (torch.randn(d, h) / d ** 0.5).requires_grad_()
    W = (torch.randn(h, d) * decoder_scale if decoder_scale else torch.zeros(h, d)).requires_grad_()
    b = torch.zeros(h, requires_grad=True)
    a = torch.zeros(d, requires_grad=True)
    return x, V, W, b, a, torch.optim.Adam([V, W, b, a], lr=1e-4)


def median_ms(step, steps):
    """step(i) a tenth of `steps` times (at least 3) untimed, then `steps` times in 10 blocks;
    the median block's ms per step."""
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
    return (times[4] + times[5]) / 2
