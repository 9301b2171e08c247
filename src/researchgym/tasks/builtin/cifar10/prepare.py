"""Build the CIFAR-10 data from the Hugging Face dataset `uoft-cs/cifar10` (config plain_text).

Files: train.npz (the first 40,000 training images and labels), validation.npz (the last 10,000
training images and labels), test_images.npz (the 10,000 test images, no labels); hidden:
answers/test_labels.npy. Images are uint8 arrays of shape (N, 32, 32, 3), height x width x RGB.
The validation split is a fifth of the training images (10,000 at full size), so smaller copies
of the dataset (a mirror used for tests) split the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from researchgym.hub import load_hub_dataset

REPO = "uoft-cs/cifar10"


def _arrays(split) -> tuple[np.ndarray, np.ndarray]:
    images = np.stack([np.asarray(image.convert("RGB"), dtype=np.uint8) for image in split["img"]])
    return images, np.asarray(split["label"], dtype=np.uint8)


def prepare(target: Path, report) -> None:
    report(f"loading {REPO} (Hugging Face hub, cached by `datasets`)")
    data = load_hub_dataset(REPO, "plain_text")
    train_x, train_y = _arrays(data["train"])
    test_x, test_y = _arrays(data["test"])
    if train_x.shape[1:] != (32, 32, 3) or test_x.shape[1:] != (32, 32, 3):
        raise RuntimeError(f"unexpected image shapes {train_x.shape} / {test_x.shape} in {REPO}")
    validation = min(10_000, len(train_x) // 5)
    (target / "answers").mkdir(parents=True)
    np.savez_compressed(target / "train.npz", images=train_x[:-validation], labels=train_y[:-validation])
    np.savez_compressed(target / "validation.npz", images=train_x[-validation:], labels=train_y[-validation:])
    np.savez_compressed(target / "test_images.npz", images=test_x)
    np.save(target / "answers" / "test_labels.npy", test_y)
    report(f"train {len(train_x) - validation:,} / validation {validation:,} / test {len(test_x):,} images")
