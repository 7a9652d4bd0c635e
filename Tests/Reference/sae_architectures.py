"""An independent numpy implementation of the forward and backward passes of aetrain's topk,
batchtopk and jumprelu sparse autoencoders (with AuxK), written from the formulas of issue 21,
not from aetrain's code. EndToEndTests.ArchitectureReferenceTests runs it on a small problem
and compares its terms and gradients with the Swift step's.

    python3 sae_architectures.py problem.json      prints the terms and gradients as JSON

Notation: pi = x V + b (m, h), x_hat = z W + a.
  topk       z = TopK_k(relu(pi)) per example, ties to the lower unit index
  batchtopk  the k*m largest entries of relu(pi) over the batch, ties to the lower example,
             then the lower unit
  jumprelu   z = pi * H(pi - theta); loss rec + lambda * L0, L0 = mean_i sum_j H(pi_ij - theta_j),
             straight-through: dz/dpi = H(pi - theta), dz/dtheta = -(theta/eps) K((pi - theta)/eps),
             dL0/dtheta = -(1/eps) K((pi - theta)/eps), K(u) = 1[|u| < 1/2]
  AuxK       e = x - x_hat (no gradient), e_hat = TopK_kaux(relu(pi) on dead latents) W (no bias),
             AuxK = mean_i |e_i - e_hat_i|^2 / mean_i |x_i - mean(x)|^2, loss rec + c * AuxK
"""
import json
import sys

import numpy as np


def main(path):
    p = json.load(open(path))
    m, d, h = p["m"], p["d"], p["h"]
    x = np.array(p["x"], dtype=np.float64).reshape(m, d)
    V = np.array(p["V"]).reshape(d, h)
    W = np.array(p["W"]).reshape(h, d)
    b = np.array(p["b"])
    a = np.array(p["a"])
    act = p["activation"]
    pi = x @ V + b
    r = np.maximum(pi, 0)
    keep = np.zeros((m, h), dtype=bool)
    if act == "topk":
        for i in range(m):
            order = sorted((j for j in range(h) if r[i, j] > 0), key=lambda j: (-r[i, j], j))
            keep[i, order[: p["k"]]] = True
        z = np.where(keep, r, 0.0)
    elif act == "batchtopk":
        order = sorted(((i, j) for i in range(m) for j in range(h) if r[i, j] > 0), key=lambda e: (-r[e], e[0], e[1]))
        for e in order[: p["k"] * m]:
            keep[e] = True
        z = np.where(keep, r, 0.0)
    else:
        theta = np.array(p["threshold"])
        keep = pi > theta
        z = np.where(keep, pi, 0.0)
    x_hat = z @ W + a
    R = x_hat - x
    out = {"rec": float((R ** 2).sum() / m), "l0": float(keep.sum() / m)}
    G = 2.0 / m * R
    dW = z.T @ G
    da = G.sum(0)
    GZ = G @ W.T
    GP = GZ * (z != 0)
    dead = np.array(p["dead"], dtype=bool)
    out["auxk"] = 0.0
    if act in ("topk", "batchtopk") and p["kAux"] > 0 and dead.any():
        e = x - x_hat
        e_hat = np.zeros((m, d))
        chosen = []
        for i in range(m):
            order = sorted((j for j in range(h) if dead[j] and r[i, j] > 0), key=lambda j: (-r[i, j], j))[: p["kAux"]]
            chosen.append(order)
            for j in order:
                e_hat[i] += r[i, j] * W[j]
        S = ((x - x.mean(0)) ** 2).sum()
        out["auxk"] = float(((e - e_hat) ** 2).sum() / S)
        Ga = 2.0 * p["auxCoef"] / S * (e_hat - e)
        for i in range(m):
            for j in chosen[i]:
                dW[j] += r[i, j] * Ga[i]
                GP[i, j] += Ga[i] @ W[j]
    dV = x.T @ GP
    db = GP.sum(0)
    grads = {"V": dV.ravel().tolist(), "W": dW.ravel().tolist(), "b": db.tolist(), "a": da.tolist()}
    if act == "jumprelu":
        eps, lam = p["bandwidth"], p["lambda"]
        band = np.abs((pi - theta) / eps) < 0.5
        grads["threshold"] = (band * (GZ * (-theta / eps) - lam / (m * eps))).sum(0).tolist()
    out["grads"] = grads
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
