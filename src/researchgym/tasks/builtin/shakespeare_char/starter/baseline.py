"""Baseline: a small GPT trained on characters, saved as TorchScript for the evaluation.

    python baseline.py [--steps 600] [--batch 16] [--seed 0]

Reads data/train.txt and data/vocab.json, trains a 4-layer causal transformer on 256-character
windows, prints the validation loss (nats per character) and saves `model.pt`: a TorchScript
module mapping character ids (batch, time <= 256) to next-character logits (batch, time, vocab).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONTEXT = 256  # the evaluation feeds windows of up to this many characters


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention, then an MLP."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.heads = heads
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(width, dim=2)
        q, k, v = (t.view(batch, time, self.heads, width // self.heads).transpose(1, 2) for t in (q, k, v))
        drop = self.dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, time, width))
        return x + self.mlp(self.norm2(x))


class CharGPT(nn.Module):
    def __init__(self, vocab: int, width: int = 128, layers: int = 4, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, width)
        self.positions = nn.Embedding(CONTEXT, width)
        self.blocks = nn.ModuleList([Block(width, heads, dropout) for _ in range(layers)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.tokens(ids) + self.positions(positions)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def encode(text: str, vocab: list[str]) -> torch.Tensor:
    index = {ch: i for i, ch in enumerate(vocab)}
    return torch.tensor([index[ch] for ch in text], dtype=torch.long)


def batch_of(data: torch.Tensor, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    starts = torch.randint(len(data) - CONTEXT - 1, (size,), generator=generator)
    windows = torch.stack([data[s : s + CONTEXT + 1] for s in starts.tolist()])
    return windows[:, :-1], windows[:, 1:]


@torch.no_grad()
def validation_loss(model: nn.Module, data: torch.Tensor, max_windows: int = 200) -> float:
    """Mean loss over consecutive 256-character windows (a quick estimate of what validate shows)."""
    model.eval()
    count = min(max_windows, (len(data) - 1) // CONTEXT)
    windows = data[: count * CONTEXT + 1]
    inputs = windows[:-1].view(count, CONTEXT)
    targets = windows[1:].view(count, CONTEXT)
    losses = [F.cross_entropy(model(x).flatten(0, 1), y.flatten()) for x, y in zip(inputs.split(50), targets.split(50))]
    model.train()
    return float(torch.stack(losses).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="model.pt")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    vocab = json.load(open("data/vocab.json"))
    train = encode(open("data/train.txt").read(), vocab)
    validation = encode(open("data/validation.txt").read(), vocab)
    model = CharGPT(len(vocab))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1)
    warmup = max(1, args.steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * s / args.steps))))
    generator = torch.Generator().manual_seed(args.seed)
    started = time.time()
    for step in range(1, args.steps + 1):
        inputs, targets = batch_of(train, args.batch, generator)
        loss = F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == args.steps:
            print(f"step {step}: train loss {loss.item():.4f} ({time.time() - started:.0f}s)", flush=True)
    print(f"validation loss (first 200 windows): {validation_loss(model, validation):.4f}", flush=True)
    model.eval()
    torch.jit.script(model).save(args.out)
    print(f"saved {args.out}", flush=True)


if __name__ == "__main__":
    main()
