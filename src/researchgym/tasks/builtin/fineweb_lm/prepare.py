"""Build the FineWeb token data from the modded-nanogpt GPT-2 token cache on the hub.

Source: the dataset repository `kjj0/fineweb10B-gpt2`, files fineweb_train_000001.bin ...
fineweb_train_000018.bin (100M tokens each; MLGym used these 18, 1.8B tokens) and
fineweb_val_000000.bin. Shard format: 256 int32 (magic 20240520, version 1, token count), then
the uint16 GPT-2 token ids. Every header is checked; a bad one fails naming the file.

Written (the shard format throughout):
  fineweb10B/fineweb_train_0000NN.bin   the train shards, hard-linked or copied unchanged
  fineweb10B/fineweb_validation.bin     val shard tokens [10,485,760 : 20,971,520), visible
  answers/fineweb_test.bin              val shard tokens [0 : 10,485,760), hidden: what MLGym scored

A val shard shorter than 2 x 10,485,760 tokens (a small mirror, as in the tests) is split in
half instead: the first floor(n/2) tokens are the hidden test split, the next floor(n/2) the
validation split. With a mirror (RESEARCHGYM_HUB_MIRROR) the train shards are those of 1..18
present in the mirror; from the hub, those of 1..18 the repository lists (all 18 if it cannot
be listed, offline with a warm cache).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from researchgym.hub import MIRROR_ENV, DatasetUnavailable, hub_file, mirror_root

REPO = "kjj0/fineweb10B-gpt2"
TRAIN_SHARDS = range(1, 19)
VAL_SHARD = "fineweb_val_000000.bin"
MAGIC, VERSION, HEADER_INTS = 20240520, 1, 256
HEADER_BYTES = HEADER_INTS * 4
SPLIT_TOKENS = 10_485_760  # 160 batches of 64 x 1,024: MLGym's evaluation
VOCAB = 50304


def train_name(index: int) -> str:
    return f"fineweb_train_{index:06d}.bin"


def read_shard(path: Path, name: str) -> np.ndarray:
    """The token ids of a shard, memory-mapped, after checking its header and size."""
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise ValueError(f"{name}: {size} bytes, shorter than the {HEADER_BYTES}-byte shard header")
    header = np.fromfile(path, dtype=np.int32, count=HEADER_INTS)
    if int(header[0]) != MAGIC:
        raise ValueError(f"{name}: bad header magic {int(header[0])} (expected {MAGIC}); not a token shard")
    if int(header[1]) != VERSION:
        raise ValueError(f"{name}: shard version {int(header[1])}, expected {VERSION}")
    count = int(header[2])
    if count < 0 or size != HEADER_BYTES + 2 * count:
        raise ValueError(f"{name}: the header says {count} tokens ({HEADER_BYTES + 2 * count} bytes) "
                         f"but the file has {size} bytes")
    tokens = np.memmap(path, dtype=np.uint16, mode="r", offset=HEADER_BYTES, shape=(count,)) if count else \
        np.zeros(0, dtype=np.uint16)
    if count and int(tokens.max()) >= VOCAB:
        raise ValueError(f"{name}: token id {int(tokens.max())} is not below the vocabulary size {VOCAB}")
    return tokens


def write_shard(path: Path, tokens: np.ndarray) -> None:
    header = np.zeros(HEADER_INTS, dtype=np.int32)
    header[:3] = (MAGIC, VERSION, len(tokens))
    with path.open("wb") as out:
        out.write(header.tobytes())
        out.write(np.ascontiguousarray(tokens, dtype=np.uint16).tobytes())


def train_shards() -> list[str]:
    """The train shard names to fetch: those of 1..18 that exist (see the module docstring)."""
    wanted = [train_name(i) for i in TRAIN_SHARDS]
    mirror = mirror_root()
    if mirror is not None:
        folder = mirror / REPO
        present = [name for name in wanted if (folder / name).is_file()]
        if not present:
            raise DatasetUnavailable(f"{MIRROR_ENV}={mirror} has no train shards {REPO}/fineweb_train_0000NN.bin "
                                     "(NN from 01 to 18)")
        return present
    try:  # huggingface_hub is imported by then, offline or not (hub_file has fetched the val shard)
        from huggingface_hub import list_repo_files

        listed = set(list_repo_files(REPO, repo_type="dataset"))
    except Exception:
        return wanted
    present = [name for name in wanted if name in listed]
    return present or wanted


def place(source: Path, target: Path) -> None:
    """A hard link to the fetched file if the filesystem allows (no second 200 MB copy), else a
    copy. Never a symlink: the sandbox mounts only the dataset folder."""
    try:
        os.link(source.resolve(), target)
    except OSError:
        shutil.copyfile(source, target)


def prepare(target: Path, report) -> None:
    report(f"fetching {VAL_SHARD} from the Hugging Face dataset {REPO}")
    val_path = hub_file(REPO, VAL_SHARD, repo_type="dataset")
    val = read_shard(val_path, VAL_SHARD)
    names = train_shards()
    shards = target / "fineweb10B"
    shards.mkdir(parents=True, exist_ok=True)
    (target / "answers").mkdir()
    train_tokens = 0
    for name in names:
        report(f"fetching {name}")
        path = hub_file(REPO, name, repo_type="dataset")
        train_tokens += len(read_shard(path, name))
        place(path, shards / name)
    size = SPLIT_TOKENS if len(val) >= 2 * SPLIT_TOKENS else len(val) // 2
    if size < 2:
        raise ValueError(f"{VAL_SHARD}: {len(val)} tokens, too few for a validation and a test split")
    write_shard(target / "answers" / "fineweb_test.bin", val[:size])
    write_shard(shards / "fineweb_validation.bin", val[size : 2 * size])
    report(f"train: {len(names)} shards, {train_tokens:,} tokens; validation {size:,} tokens; "
           f"test (hidden) {size:,} tokens")
