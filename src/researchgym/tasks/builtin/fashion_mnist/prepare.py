"""Build the Fashion-MNIST data: from Debian's `dataset-fashion-mnist` files when installed,
else from the Hugging Face dataset `zalando-datasets/fashion_mnist` (needs the network and the
`datasets` package).

Files: train.npz (50,000 images and labels), validation.npz (10,000 images and labels, the
last 10,000 of the original training set), test_images.npz (the 10,000 test images, no labels);
hidden: answers/test_labels.npy. Images are uint8 arrays of shape (N, 28, 28).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
VALIDATION = 10_000


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def _from_debian() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (_idx(DEBIAN / "train-images-idx3-ubyte.gz"), _idx(DEBIAN / "train-labels-idx1-ubyte.gz"),
            _idx(DEBIAN / "t10k-images-idx3-ubyte.gz"), _idx(DEBIAN / "t10k-labels-idx1-ubyte.gz"))


def _from_hub() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from datasets import load_dataset  # the real path when the Debian package is missing

    data = load_dataset("zalando-datasets/fashion_mnist")
    arrays = []
    for split in ("train", "test"):
        arrays.append(np.stack([np.asarray(image, dtype=np.uint8) for image in data[split]["image"]]))
        arrays.append(np.asarray(data[split]["label"], dtype=np.uint8))
    return arrays[0], arrays[1], arrays[2], arrays[3]


def prepare(target: Path, report) -> None:
    if (DEBIAN / "train-images-idx3-ubyte.gz").is_file():
        report(f"reading {DEBIAN} (Debian package dataset-fashion-mnist)")
        train_x, train_y, test_x, test_y = _from_debian()
    else:
        report("downloading zalando-datasets/fashion_mnist from the Hugging Face hub")
        train_x, train_y, test_x, test_y = _from_hub()
    if train_x.shape != (60_000, 28, 28) or test_x.shape != (10_000, 28, 28):
        raise RuntimeError(f"unexpected shapes {train_x.shape} / {test_x.shape}")
    (target / "answers").mkdir(parents=True)
    np.savez_compressed(target / "train.npz", images=train_x[:-VALIDATION], labels=train_y[:-VALIDATION])
    np.savez_compressed(target / "validation.npz", images=train_x[-VALIDATION:], labels=train_y[-VALIDATION:])
    np.savez_compressed(target / "test_images.npz", images=test_x)
    np.save(target / "answers" / "test_labels.npy", test_y)
    report("train 50,000 / validation 10,000 / test 10,000 images")
