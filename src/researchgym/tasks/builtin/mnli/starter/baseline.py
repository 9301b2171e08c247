"""Baseline: fine-tune the pre-trained BERT (data/bert-base-uncased) for 3-way NLI on MNLI.

    python baseline.py [--epochs 1] [--lr 1e-7] [--batch-size 32] [--max-length 128]
                       [--train-limit N] [--seed 0]

MLGym's recipe: BertForSequenceClassification with 3 labels, sentence-pair inputs padded and
truncated to 128 tokens, batches of 32 shuffled, 1 epoch of AdamW at a deliberately tiny
learning rate (1e-7) with no scheduler, fp16 autocast with a GradScaler on a GPU (fp32 on the
CPU). After each epoch it prints the accuracy on data/validation.jsonl and saves the model with
save_pretrained (safetensors) into bert_mnli_model/, the submission. Unlike the original it is
seeded, so a run can be repeated. `--train-limit` trains on the first N pairs only (quick tries).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

os.environ["HF_HUB_OFFLINE"] = "1"  # everything is local; never let transformers try the network

import numpy as np
import torch
from torch.utils.data import DataLoader
from transformers import BertForSequenceClassification, BertTokenizer

PRETRAINED = "data/bert-base-uncased"
OUTPUT = "bert_mnli_model"


def read_pairs(path: str, limit: int | None = None) -> list[dict]:
    rows = []
    with open(path) as handle:
        for line in handle:
            rows.append(json.loads(line))
            if limit is not None and len(rows) >= limit:
                break
    return rows


def make_collate(tokenizer, max_length: int):
    def collate(rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = tokenizer([r["premise"] for r in rows], [r["hypothesis"] for r in rows], padding="max_length",
                          truncation=True, max_length=max_length, return_tensors="pt")
        batch["labels"] = torch.tensor([r["label"] for r in rows], dtype=torch.long)
        return batch
    return collate


@torch.no_grad()
def accuracy(model, loader, device) -> float:
    model.eval()
    correct = total = 0
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        labels = batch.pop("labels")
        correct += int((model(**batch).logits.argmax(dim=-1) == labels).sum())
        total += len(labels)
    return 100.0 * correct / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-7)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--train-limit", type=int, default=None, help="train on the first N pairs only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    use_amp = device.type == "cuda"

    tokenizer = BertTokenizer.from_pretrained(PRETRAINED)
    model = BertForSequenceClassification.from_pretrained(PRETRAINED, num_labels=3, use_safetensors=True).to(device)
    collate = make_collate(tokenizer, args.max_length)
    train = read_pairs("data/train.jsonl", args.train_limit)
    validation = read_pairs("data/validation.jsonl")
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, collate_fn=collate,
                              generator=torch.Generator().manual_seed(args.seed))
    validation_loader = DataLoader(validation, batch_size=args.batch_size, collate_fn=collate)
    print(f"{len(train):,} training pairs, {len(validation):,} validation pairs, device {device}"
          f"{' (fp16 autocast)' if use_amp else ''}", flush=True)

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    started = time.time()
    for epoch in range(args.epochs):
        model.train()
        running = 0.0
        for step, batch in enumerate(train_loader, 1):
            batch = {k: v.to(device) for k, v in batch.items()}
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                loss = model(**batch).loss
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            running += float(loss.detach())
            if step % 500 == 0:
                print(f"epoch {epoch + 1} step {step}/{len(train_loader)} loss {running / 500:.4f} "
                      f"({time.time() - started:.0f}s)", flush=True)
                running = 0.0
        print(f"epoch {epoch + 1}: validation accuracy {accuracy(model, validation_loader, device):.2f}% "
              f"({time.time() - started:.0f}s)", flush=True)
        model.save_pretrained(OUTPUT)  # config.json + model.safetensors
    print(f"saved {OUTPUT}/", flush=True)


if __name__ == "__main__":
    main()
