"""Score model.pt on FineWeb: mean next-token cross-entropy (nats) over a whole split.

    python evaluate.py --split validation|test

validation reads data/fineweb10B/fineweb_validation.bin, test the hidden
data/answers/fineweb_test.bin (10,485,760 GPT-2 tokens each at full size). model.pt must be a
TorchScript module (torch.jit.script(model).save("model.pt")) mapping int64 token ids (batch,
time), time <= 1024, to logits (batch, time, 50304), position t predicting token t+1. The split
is cut into consecutive 1,024-token windows and every token after the first of each window is
scored; the loss is computed here, in float32, from the logits (the model never receives the
targets). The model runs on the GPU if there is one, in float32 with TF32 matmuls (no autocast:
the look-ahead check compares two runs, and the scored and checking runs must be computed the
same way).

The checks of lm_scoring.py apply: no file-reading ops, no code at load time, no look-ahead
(each batch is re-run on a second copy of the model, in a process of its own with the same
matmul settings, with the tokens after a secret cut replaced). The cut comes from this evaluation's secret seed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys

from agent_link import report as emit
from isolation import no_memory_access, take_secrets

CONTEXT = 1024
VOCAB = 50304
MAGIC, VERSION, HEADER_BYTES = 20240520, 1, 256 * 4
SPLITS = {"validation": "data/fineweb10B/fineweb_validation.bin", "test": "data/answers/fineweb_test.bin"}


def read_tokens(path: str):
    """The token ids of a shard (256 int32 header: magic, version, count; then uint16 ids)."""
    import numpy as np

    header = np.fromfile(path, dtype=np.int32, count=256)
    if len(header) < 3 or header[0] != MAGIC or header[1] != VERSION:
        raise ValueError(f"{path} is not a token shard (bad header)")
    count = int(header[2])
    if os.path.getsize(path) != HEADER_BYTES + 2 * count:
        raise ValueError(f"{path}: the header says {count} tokens but the file size disagrees")
    return np.fromfile(path, dtype=np.uint16, offset=HEADER_BYTES, count=count)


def main() -> None:
    no_memory_access()
    _, seed = take_secrets()
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", choices=sorted(SPLITS), default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    args = parser.parse_args()

    def report(**fields) -> None:
        emit(fields)

    def fail(message: str, status: str = "evaluation_error") -> None:
        print(f"evaluation failed: {message}", file=sys.stderr, flush=True)
        report(error=message, status=status)
        sys.exit(1)

    import torch

    from lm_scoring import CheckCopy, ScoringError, load_model, window_loss

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    try:
        data = torch.from_numpy(read_tokens(SPLITS[args.split]).astype("int64"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read the {args.split} tokens: {exc}")
    rows = 16 if cuda else 4  # windows per call; 16 x 1024 x 50304 float32 logits are 3.3 GB
    try:
        model = load_model("model.pt", device)

        def progress(done: int, total: int) -> None:
            if done == total or done % max(1, total // 10) == 0:
                print(f"scored {done}/{total} batches", flush=True)

        with CheckCopy("model.pt", device, VOCAB) as check:  # a second copy, in a process of its own
            total, scored = window_loss(model, check, data, context=CONTEXT, vocab=VOCAB, rows=rows,
                                        rng=random.Random(seed if seed is not None else 0), device=device,
                                        progress=progress)
    except ScoringError as exc:
        fail(str(exc), exc.status)
    except torch.cuda.OutOfMemoryError as exc:
        fail(f"out of GPU memory running model.pt on {rows} windows of {CONTEXT} tokens: {exc}")
    if scored == 0:
        fail(f"the {args.split} split has no tokens to score")
    report(val_loss=total / scored, split=args.split, tokens=scored, device=device.type)


if __name__ == "__main__":
    main()
