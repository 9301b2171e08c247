"""Score model.pt on Shakespeare: mean next-character loss in nats, over a whole split.

    python evaluate.py --split validation|test

model.pt must be a TorchScript module (torch.jit.save) mapping a LongTensor of character ids
(batch, time), time <= 256, to logits (batch, time, len(vocab)) where position t predicts the
character after t. The split's text is cut into consecutive 256-character windows and every
character after the first of each window is scored; the loss is computed here from the logits
(the model never receives the targets).

The checks of lm_scoring.py apply (shared with FineWeb): no file-reading ops (TorchScript's
`torch.from_file` could otherwise read the hidden test plays), no code at load time, and no
look-ahead: every batch is also run on a second copy of the model, in a process of its own, with
the characters after a secret random cut replaced by real text from another window; the logits
up to the cut must not change. The cut comes from this evaluation's secret seed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

from agent_link import report as emit
from isolation import no_memory_access, take_secrets

CONTEXT = 256
BATCH = 32
SPLITS = {"validation": "data/validation.txt", "test": "data/answers/test.txt"}


def main() -> None:
    no_memory_access()
    _, seed = take_secrets()
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", choices=sorted(SPLITS), default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    args = parser.parse_args()

    def fail(message: str, status: str = "evaluation_error") -> None:
        print(f"evaluation failed: {message}", file=sys.stderr)
        print("", flush=True)
        emit({"error": message, "status": status})
        sys.exit(1)

    import torch

    from lm_scoring import CheckCopy, ScoringError, load_model, window_loss

    torch.set_num_threads(2)
    with open("data/vocab.json", encoding="utf-8") as handle:
        vocab = json.load(handle)
    try:
        with open(SPLITS[args.split], encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        fail(f"cannot read the {args.split} text: {exc.strerror or exc}")
    index = {ch: i for i, ch in enumerate(vocab)}
    data = torch.tensor([index[ch] for ch in text], dtype=torch.long)
    device = torch.device("cpu")
    try:
        model = load_model("model.pt", device)
        with CheckCopy("model.pt", device, len(vocab)) as check:  # a second copy, in a process of its own
            total, scored = window_loss(model, check, data, context=CONTEXT, vocab=len(vocab), rows=BATCH,
                                        rng=random.Random(seed if seed is not None else 0), device=device)
    except ScoringError as exc:
        fail(str(exc), exc.status)
    loss = total / scored
    emit({"loss": loss, "bits_per_char": loss / 0.6931471805599453, "characters": scored, "split": args.split})


if __name__ == "__main__":
    main()
