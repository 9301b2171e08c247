"""Baseline: a modded-nanogpt-style GPT-2-small-sized model trained on FineWeb tokens with Muon + Adam.

    python baseline.py [--iterations 500] [--batch-size 64] [--seq-len 1024] [--layers 12]
                       [--heads 6] [--width 768] [--val-tokens 524288] [--warmdown 1308]

The recipe of MLGym's baseline, in one process on one GPU:
  * GPT: vocabulary 50,304, 12 layers, 6 heads, width 768 (162.2M parameters); parameter-free
    RMSNorm before each attention and MLP, after the embedding and before the head; bias-free
    q/k/v/out projections, RMSNorm on queries and keys, rotary embeddings (base 10000), causal
    attention; a ReLU^2 MLP of 4x width; zero-initialised output projections and head; the
    embedding and the head are separate matrices.
  * Optimisers: Adam (betas 0.9/0.95) on the embedding (lr 0.3) and the head (lr 0.002); Muon
    (lr 0.02, momentum 0.95, Nesterov, 5 quintic Newton-Schulz steps) on every block matrix; no
    weight decay.
  * 500 iterations of 64 x 1,024 tokens, read in order from data/fineweb10B starting at train
    shard 1; bf16 autocast on CUDA.
  * The learning-rate multiplier is (iterations - it) / warmdown with warmdown 1,308: more than
    the 500 iterations, so it starts at 0.382 and falls linearly to about 0 and there is never
    a full-rate phase. That is a quirk of the original (its warmdown setting exceeds its length),
    kept here so the baseline score is the original's; you may well do better without it.

It prints the loss on the first --val-tokens of data/fineweb10B/fineweb_validation.bin, scored
as the evaluation does (1,024-token windows, every token after the first, float32; `python
evaluate.py --split validation` scores all of it) and saves model.pt: a TorchScript module
mapping int64 token ids (batch, time <= 1024) to float32 logits (batch, time, 50304). The small
options (--layers 1 --width 64 ...) exist to try things quickly.
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 50304
MAGIC, VERSION, HEADER_BYTES = 20240520, 1, 256 * 4
DATA = "data/fineweb10B"


# ----------------------------------------------------------------------------- model
def rms_norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.size(-1),))


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of x (batch, time, heads, head_dim): pairs (i, i + head_dim/2) turned
    by an angle that grows with the position."""
    half = x.size(-1) // 2
    a, b = x[..., :half].float(), x[..., half:].float()
    return torch.cat((a * cos + b * sin, b * cos - a * sin), dim=-1).type_as(x)


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.q = nn.Linear(width, width, bias=False)
        self.k = nn.Linear(width, width, bias=False)
        self.v = nn.Linear(width, width, bias=False)
        self.out = nn.Linear(width, width, bias=False)
        nn.init.zeros_(self.out.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        shape = (batch, length, self.heads, self.head_dim)
        q, k, v = self.q(x).view(shape), self.k(x).view(shape), self.v(x).view(shape)
        q, k = rms_norm(q), rms_norm(k)
        steps = torch.arange(0, self.head_dim, 2, device=x.device, dtype=torch.float32) / self.head_dim
        angles = torch.outer(torch.arange(length, device=x.device, dtype=torch.float32), torch.pow(10000.0, -steps))
        cos, sin = angles.cos()[None, :, None, :], angles.sin()[None, :, None, :]
        q, k = rotate(q, cos, sin).type_as(v), rotate(k, cos, sin).type_as(v)  # one dtype under autocast
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.out(y.transpose(1, 2).reshape(batch, length, width))


class MLP(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.up = nn.Linear(width, 4 * width, bias=False)
        self.down = nn.Linear(4 * width, width, bias=False)
        nn.init.zeros_(self.down.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.relu(self.up(x)).square())


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attention = Attention(width, heads)
        self.mlp = MLP(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(rms_norm(x))
        return x + self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, layers: int = 12, heads: int = 6, width: int = 768, vocab: int = VOCAB) -> None:
        super().__init__()
        if width % heads or (width // heads) % 2:
            raise ValueError(f"width {width} must split into {heads} heads of an even size")
        self.embedding = nn.Embedding(vocab, width)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.head = nn.Linear(width, vocab, bias=False)
        nn.init.zeros_(self.head.weight)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids (batch, time) -> float32 logits (batch, time, vocab); position t predicts t+1."""
        x = rms_norm(self.embedding(ids))
        for block in self.blocks:
            x = block(x)
        return self.head(rms_norm(x)).float()


# ----------------------------------------------------------------------------- Muon
def orthogonalise(g: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Approximately U V^T of g = U S V^T: a quintic Newton-Schulz iteration whose coefficients
    push every singular value quickly into roughly [0.7, 1.2] (it need not converge to 1)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.to(torch.bfloat16 if g.is_cuda else torch.float32)
    x = x / (x.norm() + 1e-7)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Momentum SGD whose update for each matrix is orthogonalised (see `orthogonalise`) and
    scaled by sqrt(max(1, rows/cols))."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True, steps: int = 5):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, steps=steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(p.grad)
                buffer = state["momentum"]
                buffer.mul_(group["momentum"]).add_(p.grad)
                update = p.grad.add(buffer, alpha=group["momentum"]) if group["nesterov"] else buffer
                update = orthogonalise(update, group["steps"]).to(p.dtype)
                p.add_(update, alpha=-group["lr"] * max(1.0, p.size(0) / p.size(1)) ** 0.5)


# ----------------------------------------------------------------------------- data
def read_shard(path: str) -> np.ndarray:
    """A token shard (256 int32 header: magic 20240520, version 1, count; then uint16 ids), mapped."""
    header = np.fromfile(path, dtype=np.int32, count=256)
    if len(header) < 3 or header[0] != MAGIC or header[1] != VERSION:
        raise ValueError(f"{path} is not a token shard")
    return np.memmap(path, dtype=np.uint16, mode="r", offset=HEADER_BYTES, shape=(int(header[2]),))


class Loader:
    """Consecutive batches of `rows` x `length` tokens (plus one for the targets), shard after
    shard in name order (train shard 1 first), starting over after the last."""

    def __init__(self, pattern: str, rows: int, length: int) -> None:
        self.paths = sorted(glob.glob(pattern))
        if not self.paths:
            raise FileNotFoundError(f"no training shards match {pattern}")
        self.rows, self.length = rows, length
        self.shard, self.position = 0, 0
        self.tokens = read_shard(self.paths[0])

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        need = self.rows * self.length + 1
        for _ in range(len(self.paths) + 1):
            if self.position + need <= len(self.tokens):
                break
            self.shard = (self.shard + 1) % len(self.paths)
            self.tokens, self.position = read_shard(self.paths[self.shard]), 0
        else:
            raise ValueError(f"no training shard holds {need} tokens: lower --batch-size or --seq-len")
        chunk = torch.from_numpy(self.tokens[self.position : self.position + need].astype(np.int64))
        self.position += need - 1
        return chunk[:-1].view(self.rows, self.length), chunk[1:].view(self.rows, self.length)


@torch.no_grad()
def validation_loss(model: nn.Module, tokens: np.ndarray, length: int, rows: int, device: torch.device) -> float:
    """Mean loss over consecutive windows, every token after the first scored, in float32 (as the
    evaluation)."""
    count = len(tokens) // length
    if count == 0:
        return float("nan")
    windows = torch.from_numpy(tokens[: count * length].astype(np.int64)).view(count, length)
    total = 0.0
    model.eval()
    for start in range(0, count, rows):
        x = windows[start : start + rows].to(device)
        logits = model(x)
        total += float(F.cross_entropy(logits[:, :-1].float().flatten(0, 1), x[:, 1:].flatten(), reduction="sum"))
    model.train()
    return total / (count * (length - 1))


# ----------------------------------------------------------------------------- training
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=6)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per step")
    parser.add_argument("--seq-len", type=int, default=1024, help="tokens per sequence (the evaluation uses 1024)")
    parser.add_argument("--warmdown", type=int, default=1308,
                        help="LR multiplier = min(1, (iterations - it) / warmdown)")
    parser.add_argument("--val-tokens", type=int, default=524_288, help="validation tokens to report the loss on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="torch.compile the training model (needs a compiler)")
    parser.add_argument("--out", default="model.pt")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = GPT(args.layers, args.heads, args.width).to(device)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}", flush=True)
    matrices = [p for p in model.blocks.parameters() if p.ndim == 2]
    optimisers = [
        torch.optim.Adam([model.embedding.weight], lr=0.3, betas=(0.9, 0.95)),
        torch.optim.Adam([model.head.weight], lr=0.002, betas=(0.9, 0.95)),
        Muon(matrices, lr=0.02, momentum=0.95),
    ]

    def multiplier(it: int) -> float:
        return min(1.0, (args.iterations - it) / args.warmdown)

    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, multiplier) for opt in optimisers]
    train_model = torch.compile(model) if args.compile else model
    loader = Loader(os.path.join(DATA, "fineweb_train_*.bin"), args.batch_size, args.seq_len)
    started = time.time()
    for it in range(args.iterations):
        x, y = loader.next()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = train_model(x)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        loss.backward()
        for optimiser, scheduler in zip(optimisers, schedulers):
            optimiser.step()
            scheduler.step()
        model.zero_grad(set_to_none=True)
        if it % 25 == 0 or it == args.iterations - 1:
            elapsed = time.time() - started
            print(f"step {it + 1}/{args.iterations}: train loss {loss.item():.4f}, "
                  f"{1000 * elapsed / (it + 1):.0f} ms/step", flush=True)
    val = read_shard(os.path.join(DATA, "fineweb_validation.bin"))[: args.val_tokens]
    rows = max(1, min(16, args.batch_size * args.seq_len // 1024))  # at most 16 x 1024 x 50304 logits at once
    loss = validation_loss(model, val, 1024, rows, device)
    print(f"validation loss (first {len(val):,} tokens): {loss:.4f}", flush=True)
    model.eval()
    torch.jit.script(model).save(args.out)
    print(f"saved {args.out} ({(time.time() - started):.0f}s)", flush=True)


if __name__ == "__main__":
    main()
