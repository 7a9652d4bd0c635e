#!/usr/bin/env python3
"""Make lfw_faces_25x25.npy, the dataset aetrain trains on when no --data is given.

Source: scikit-image 0.26.0's wheel from PyPI ships skimage/data/lfw_subset.npy, 200 images
of 25x25 float64 pixels in [0, 1] cut from Labeled Faces in the Wild (Huang et al. 2007):
the first 100 are faces, the next 100 are not. We keep the 100 faces, as float32 (the values
are not multiples of 1/255, so uint8 would lose precision), shape (100, 25, 25), C order.

Run from anywhere with network access to PyPI:  python3 make_lfw_faces.py
It checks both hashes below, so the result is byte-for-byte the file in the repository.
"""
import hashlib, os, subprocess, sys, tempfile, zipfile

import numpy as np

WHEEL = "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"
WHEEL_SHA256 = "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"
SUBSET_SHA256 = "9560ec2f5edfac01973f63a8a99d00053fecd11e21877e18038fbe500f8e872c"  # as in skimage/data/_registry.py
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lfw_faces_25x25.npy")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
                    "-d", tmp, "scikit-image==0.26.0"], check=True)
    wheel = os.path.join(tmp, WHEEL)
    with open(wheel, "rb") as f:
        assert sha256(f.read()) == WHEEL_SHA256, "unexpected wheel"
    with zipfile.ZipFile(wheel) as z:
        raw = z.read("skimage/data/lfw_subset.npy")
    assert sha256(raw) == SUBSET_SHA256, "unexpected lfw_subset.npy"
    path = os.path.join(tmp, "lfw_subset.npy")
    with open(path, "wb") as f:
        f.write(raw)
    subset = np.load(path)

assert subset.shape == (200, 25, 25)
faces = np.ascontiguousarray(subset[:100], dtype="<f4")
np.save(OUT, faces)
print(f"wrote {OUT}: {faces.shape} {faces.dtype}, sha256 {sha256(open(OUT, 'rb').read())}")
