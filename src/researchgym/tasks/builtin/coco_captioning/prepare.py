"""Build the COCO captioning data from the Hugging Face dataset `lmms-lab/COCO-Caption` (split
`val`: the 40,504 COCO 2014 validation images with their reference captions), plus the ImageNet
ResNet-50 weights the baseline's encoder starts from.

MLGym never published which COCO images it used (TASKS.md section 8), so this publishes its own
subset: the rows are shuffled with a fixed seed and cut into train (30,000 images), validation
(5,000) and test (5,000). Validation and test each take an eighth of the rows, capped at 5,000,
and train takes the rest, capped at 30,000, so a small copy of the dataset (a test mirror) splits
the same way.

Files (every image is visible: the agent has to caption the test images):

* images/<split>/<id>.jpg: RGB JPEGs resized so that the shorter side is 256 px.
* train_captions.json, validation_captions.json: {id: [captions]} (5 per image in COCO, a few
  images have more; all are kept). In validation_captions.json the first caption of each image is the one the
  primary metric compares with, chosen with a fixed seed here (MLGym drew it anew every run).
* test_images.json: the list of test ids.
* answers/test_captions.json (hidden): the test captions, in the same form.
* encoder/resnet50-0676ba61.pth: torchvision's ImageNet ResNet-50 weights (the sandbox has no
  network, and torchvision would otherwise download them at run time).
* manifest.json: where everything came from, the seed, the split sizes and the id field.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from researchgym.hub import fetch_url, load_hub_dataset

REPO = "lmms-lab/COCO-Caption"
SPLIT = "val"
WEIGHTS_URL = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
SEED = 0
TRAIN_MAX, HELD_OUT_MAX = 30_000, 5_000
SHORT_SIDE = 256
JPEG_QUALITY = 90
#: Fields that name an image, in order of preference; the row index when none is usable.
ID_FIELDS = ("question_id", "file_name")


def split_sizes(rows: int) -> tuple[int, int, int]:
    """(train, validation, test): an eighth each for validation and test (at most 5,000), the
    rest for train (at most 30,000)."""
    held_out = min(HELD_OUT_MAX, max(1, rows // 8))
    train = min(TRAIN_MAX, rows - 2 * held_out)
    if train < 1:
        raise RuntimeError(f"{REPO} split {SPLIT} has only {rows} usable rows; at least 3 are needed")
    return train, held_out, held_out


def _safe_id(value) -> str:
    """A file-name-safe id from a field such as 'COCO_val2014_000000391895.jpg'."""
    stem = Path(str(value)).stem if str(value).lower().endswith((".jpg", ".jpeg", ".png")) else str(value)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")


def image_ids(data) -> tuple[list[str], str]:
    """One unique id per row and the field it came from (the row index if no field works)."""
    for field in ID_FIELDS:
        if field not in data.column_names:
            continue
        ids = [_safe_id(value) for value in data[field]]
        if all(ids) and len(set(ids)) == len(ids):
            return ids, field
    width = len(str(len(data)))
    return [f"{index:0{width}d}" for index in range(len(data))], "row index"


def clean_captions(captions) -> list[str]:
    """Whitespace collapsed; empty captions dropped (a lone string is one caption)."""
    if isinstance(captions, str):
        captions = [captions]
    return [" ".join(str(c).split()) for c in (captions or []) if c is not None and str(c).strip()]


def resized(image):
    """RGB, resized (up or down) so that the shorter side is SHORT_SIDE px."""
    from PIL import Image

    image = image.convert("RGB")
    width, height = image.size
    scale = SHORT_SIDE / min(width, height)
    size = (max(SHORT_SIDE, round(width * scale)), max(SHORT_SIDE, round(height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def prepare(target: Path, report) -> None:
    report(f"loading {REPO} split {SPLIT} (Hugging Face hub, cached by `datasets`)")
    data = load_hub_dataset(REPO, split=SPLIT)
    for column in ("image", "answer"):
        if column not in data.column_names:
            raise RuntimeError(f"{REPO} split {SPLIT} has no '{column}' column (it has {data.column_names})")
    # The weights before the slow image work, so a missing file fails fast too.
    report(f"fetching the ImageNet ResNet-50 weights ({WEIGHTS_URL})")
    weights = fetch_url(WEIGHTS_URL, target / "encoder" / Path(WEIGHTS_URL).name)
    weights_sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
    if not weights_sha256.startswith("0676ba61"):  # torchvision names its files by the hash prefix
        report(f"note: {weights.name} has SHA-256 {weights_sha256[:16]}..., not torchvision's 0676ba61...")

    ids, id_field = image_ids(data)
    captions = [clean_captions(c) for c in data["answer"]]
    usable = np.array([i for i, c in enumerate(captions) if c], dtype=np.int64)
    if len(usable) < len(captions):
        report(f"{len(captions) - len(usable)} rows without a caption are left out")
    order = usable[np.random.default_rng(SEED).permutation(len(usable))]
    n_train, n_validation, n_test = split_sizes(len(order))
    splits = {"train": order[:n_train], "validation": order[n_train:n_train + n_validation],
              "test": order[n_train + n_validation:n_train + n_validation + n_test]}

    # The scoring reference of a held-out image: one of its captions, drawn once with a fixed
    # seed and stored first, so every evaluation compares with the same one.
    pick = np.random.default_rng(SEED + 1)
    tables: dict[str, dict[str, list[str]]] = {}
    for name, rows in splits.items():
        table = {}
        for row in rows:
            own = captions[row]
            if name != "train":
                k = int(pick.integers(len(own)))
                own = [own[k]] + own[:k] + own[k + 1:]
            table[ids[row]] = own
        tables[name] = table

    images = data.select_columns(["image"])
    total, done = n_train + n_validation + n_test, 0
    for name, rows in splits.items():
        folder = target / "images" / name
        folder.mkdir(parents=True)
        for row in rows:
            resized(images[int(row)]["image"]).save(folder / f"{ids[row]}.jpg", quality=JPEG_QUALITY)
            done += 1
            if done % 5000 == 0:
                report(f"{done:,} / {total:,} images written")

    def write(path: Path, value) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, ensure_ascii=False, indent=0))

    write(target / "train_captions.json", tables["train"])
    write(target / "validation_captions.json", tables["validation"])
    write(target / "test_images.json", list(tables["test"]))
    write(target / "answers" / "test_captions.json", tables["test"])
    write(target / "manifest.json", {
        "source": {"dataset": REPO, "split": SPLIT, "rows": len(data), "rows_with_captions": len(usable),
                   "id_field": id_field, "image_field": "image", "captions_field": "answer"},
        "seed": SEED, "reference_seed": SEED + 1,
        "splits": {name: len(rows) for name, rows in splits.items()},
        "unused_rows": len(usable) - total,
        "images": f"RGB JPEG (quality {JPEG_QUALITY}), shorter side resized to {SHORT_SIDE} px (bicubic)",
        "encoder": {"url": WEIGHTS_URL, "file": f"encoder/{weights.name}", "sha256": weights_sha256},
    })
    report(f"train {n_train:,} / validation {n_validation:,} / test {n_test:,} images "
           f"(ids from {id_field}; {len(usable) - total:,} rows unused)")
