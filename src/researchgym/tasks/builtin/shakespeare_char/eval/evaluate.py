"""Score model.pt on Shakespeare: mean next-character loss in nats, over a whole split.

    python evaluate.py --split validation|test

model.pt must be a TorchScript module (torch.jit.save) mapping a LongTensor of character ids
(batch, time), time <= 256, to logits (batch, time, len(vocab)) where position t predicts the
character after t. The split's text is cut into consecutive 256-character windows; the loss is
the cross-entropy of every character after the first of each window, computed here from the
logits (the model never receives the targets).

A model that peeks at later characters would score far too well, so every batch is also run a
second time with the characters after a random cut replaced by real text from another window;
the logits up to the cut must not change. The cut comes from this evaluation's secret seed.
TorchScript cannot run arbitrary Python (no files, no environment), which is why the module is
loaded in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys

from isolation import no_memory_access, take_secrets

CONTEXT = 256
BATCH = 32


def main() -> None:
    no_memory_access()
    token, seed = take_secrets()
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    args = parser.parse_args()

    def fail(message: str) -> None:
        print(f"evaluation failed: {message}", file=sys.stderr)
        print("\n" + json.dumps({"error": message, "status": "evaluation_error", "token": token}), flush=True)
        sys.exit(1)

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    vocab = json.load(open("data/vocab.json"))
    text = open("data/answers/test.txt" if args.split == "test" else "data/validation.txt").read()
    index = {ch: i for i, ch in enumerate(vocab)}
    data = torch.tensor([index[ch] for ch in text], dtype=torch.long)
    if not os.path.isfile("model.pt"):
        fail("model.pt is missing: save your model with torch.jit.save(torch.jit.script(model), 'model.pt')")
    try:
        model = torch.jit.load("model.pt", map_location="cpu")
    except Exception as exc:
        fail(f"model.pt is not a TorchScript module torch.jit.load can read: {exc}")
    model.eval()
    count = (len(data) - 1) // CONTEXT
    inputs = data[: count * CONTEXT].view(count, CONTEXT)
    targets = data[1 : count * CONTEXT + 1].view(count, CONTEXT)
    rng = random.Random(seed if seed is not None else 0)
    total = 0.0
    with torch.no_grad():
        for start in range(0, count, BATCH):
            x, y = inputs[start : start + BATCH], targets[start : start + BATCH]
            try:
                logits = model(x)
            except Exception as exc:
                fail(f"model.pt failed on a batch of shape {tuple(x.shape)}: {exc}")
            if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (*x.shape, len(vocab)):
                shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                fail(f"model.pt must return logits of shape {(*x.shape, len(vocab))} (batch, time, vocab), got {shape}")
            logits = logits.float()
            if not torch.isfinite(logits).all():
                fail("model.pt returned NaN or infinite logits")
            if len(x) > 1:
                cut = rng.randrange(CONTEXT - 1)
                other = x.roll(1, dims=0).clone()
                other[:, : cut + 1] = x[:, : cut + 1]
                again = model(other).float()
                if not torch.allclose(logits[:, : cut + 1], again[:, : cut + 1], rtol=1e-3, atol=1e-3):
                    fail("model.pt looks ahead: its logits at a position changed when only later characters "
                         "changed (position t may depend on characters 0..t only)")
            total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
    loss = total / targets.numel()
    print("\n" + json.dumps({"loss": loss, "bits_per_char": loss / 0.6931471805599453, "characters": targets.numel(),
                             "split": args.split, "token": token}), flush=True)


if __name__ == "__main__":
    main()
