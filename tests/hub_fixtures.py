"""Tiny copies of hub repositories, laid out as on the hub, for RESEARCHGYM_HUB_MIRROR.

Each writer puts a few rows, written with `datasets`, under `<mirror>/<repo id>/` with the
README `configs:` block the real repository has, so `datasets.load_dataset` reads them through
the same code path (config names, split names, features) as the real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_readme_configs(repo: Path, configs: dict[str, dict[str, str]]) -> None:
    """README.md front matter mapping each config's splits to file globs, as hub repos do."""
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        for split, pattern in splits.items():
            lines += [f"  - split: {split}", f"    path: {pattern}"]
    lines += ["---", "", "A small fixture for researchgym's tests.", ""]
    repo.mkdir(parents=True, exist_ok=True)
    (repo / "README.md").write_text("\n".join(lines))


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(mirror: Path, *, train: int = 200, test: int = 50, seed: int = 0) -> Path:
    """uoft-cs/cifar10: config plain_text, splits train/test, `img` (Image) and `label` (ClassLabel).

    Each class has its own mean colour, so a classifier can learn something from few images.
    """
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    palette = rng.integers(30, 225, size=(10, 3))
    repo = mirror / "uoft-cs" / "cifar10"
    features = Features({"img": Image(), "label": ClassLabel(names=CIFAR10_CLASSES)})
    for split, count in (("train", train), ("test", test)):
        labels = rng.integers(0, 10, size=count)
        images = [
            PILImage.fromarray(np.clip(rng.normal(palette[k], 25, size=(32, 32, 3)), 0, 255).astype(np.uint8))
            for k in labels
        ]
        path = repo / "plain_text" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        Dataset.from_dict({"img": images, "label": labels.tolist()}, features=features).to_parquet(str(path))
    write_readme_configs(repo, {"plain_text": {"train": "plain_text/train-*", "test": "plain_text/test-*"}})
    return repo
