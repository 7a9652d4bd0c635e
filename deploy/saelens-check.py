"""Loads an `aetrain export --format saelens` directory with SAELens itself and compares its codes
with `aetrain encode`'s.

    python deploy/saelens-check.py SAE_DIR DATA.npy CODES.npy [SAE_DIR DATA.npy CODES.npy ...]

DATA.npy: the raw vectors (N, D) that CODES.npy (N, h) encodes, e.g. from
`aetrain encode RUN --data DATA.npy --out CODES.npy`. Needs a Python with `sae-lens` (and so
PyTorch) installed: `pip install sae-lens` in a venv. Prints the architecture SAELens chose, the
largest difference between the codes, the entries that differ (only where a pre-activation lies
within 1e-4 of a decision, which float32 may round either way) and SAELens's explained variance
of its own reconstruction, and the metadata SAELens read (model_name, hook_name, dataset_path);
exits 1 if the codes of any export differ elsewhere. Several exports are checked in one process
(PyTorch takes long to import).
"""
import sys

import numpy as np
import torch
from sae_lens import SAE


def check(sae_dir, data, codes):
    """True if SAELens's codes of DATA equal CODES away from the decisions."""
    sae = SAE.load_from_disk(sae_dir, device="cpu")
    x = torch.from_numpy(np.load(data).astype(np.float32))
    with torch.no_grad():
        z = sae.encode(x)
        x_hat = sae.decode(z)
        pre = sae.process_sae_in(x) @ sae.W_enc + sae.b_enc
    z, x_hat, pre, x = (t.double().numpy() for t in (z, x_hat, pre, x))
    ours = np.load(codes).astype(np.float64)
    if ours.shape != z.shape:
        print(f"{sae_dir}: {codes} has shape {ours.shape}, SAELens's codes {z.shape}")
        return False
    scale = max(np.abs(z).max(), 1e-30)
    differ = np.abs(ours - z) > 1e-5 * scale
    # How close each entry is to its decision: a threshold, or the k-th largest of its row.
    if hasattr(sae, "threshold"):
        near = np.abs(pre - sae.threshold.detach().double().numpy()) < 1e-4 * scale
    elif sae.cfg.architecture() == "topk":
        s = -np.sort(-np.maximum(pre, 0), axis=1)
        k = sae.cfg.k
        gap = s[:, k - 1] - s[:, k] if k < s.shape[1] else np.full(s.shape[0], np.inf)
        near = np.repeat((gap < 1e-4 * scale)[:, None], s.shape[1], 1)
    else:
        near = np.abs(pre) < 1e-4 * scale
    ev = 1 - ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    m = sae.cfg.metadata
    print(f"{sae_dir}: SAELens {type(sae).__name__} ({sae.cfg.architecture()}), codes {z.shape}, "
          f"largest difference {np.abs(ours - z).max():.3g} (codes up to {scale:.3g}), "
          f"{int(differ.sum())} entries differ ({int((differ & ~near).sum())} away from a decision), "
          f"L0 {(z > 0).sum(1).mean():.2f}, explained variance {ev:.4f}; "
          f"metadata model_name {m.model_name}, hook_name {m.hook_name}, dataset_path {m.dataset_path}")
    return not (differ & ~near).any()


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit("error: usage: saelens-check.py SAE_DIR DATA.npy CODES.npy [SAE_DIR DATA.npy CODES.npy ...]")
    results = [check(*args[i:i + 3]) for i in range(0, len(args), 3)]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
