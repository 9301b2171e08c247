"""Baseline image classifier: MLGym's small CNN and training recipe, in plain PyTorch.

Two conv layers (C->32->64, 3x3, ReLU, max-pool) and a linear layer to 10 classes (50,186
parameters for 28x28 grey images, 60,362 for 32x32 colour); pixels / 255, channels first;
AdamW lr 5e-5 (weight decay 0.01), linear decay after 500 warm-up steps, batch 64, gradient
clipping 1.0, 10 epochs, seed 42. The best epoch by validation loss is kept (never the test
labels, which this workspace does not have). Uses the GPU when there is one.
Writes submission.csv with a label for every validation and test image (`id`: val-N / test-N).

    python baseline.py [--epochs 10] [--train-limit N]
"""

import argparse
import copy

import numpy as np
import torch
from torch import nn

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--train-limit", type=int, default=None, help="train on the first N images only")
args = parser.parse_args()

torch.manual_seed(42)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load(name):
    data = np.load(f"data/{name}.npz")
    images = torch.tensor(data["images"], dtype=torch.float32) / 255.0
    # (N, H, W) grey or (N, H, W, C) colour -> (N, C, H, W)
    images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
    labels = torch.tensor(data["labels"], dtype=torch.long) if "labels" in data else None
    return images, labels


train_x, train_y = load("train")
if args.train_limit:
    train_x, train_y = train_x[: args.train_limit], train_y[: args.train_limit]
val_x, val_y = load("validation")
test_x, _ = load("test_images")

channels, height, width = train_x.shape[1:]
model = nn.Sequential(
    nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * (height // 4) * (width // 4), 10),
).to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01)
batch = 64
steps = args.epochs * ((len(train_x) + batch - 1) // batch)
warmup = 500
schedule = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda step: step / warmup if step < warmup else max(0.0, (steps - step) / max(1, steps - warmup)))
loss_fn = nn.CrossEntropyLoss()


def predict(images):
    model.eval()
    with torch.no_grad():
        return torch.cat([model(images[i:i + 1000].to(device)).cpu() for i in range(0, len(images), 1000)])


best = (float("inf"), copy.deepcopy(model.state_dict()))
for epoch in range(args.epochs):
    model.train()
    order = torch.randperm(len(train_x))
    for start in range(0, len(order), batch):
        index = order[start:start + batch]
        optimizer.zero_grad()
        loss = loss_fn(model(train_x[index].to(device)), train_y[index].to(device))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    logits = predict(val_x)
    val_loss = loss_fn(logits, val_y).item()
    accuracy = (logits.argmax(1) == val_y).float().mean().item()
    print(f"epoch {epoch + 1}: validation loss {val_loss:.4f}, accuracy {accuracy:.4f}", flush=True)
    if val_loss < best[0]:
        best = (val_loss, copy.deepcopy(model.state_dict()))

model.load_state_dict(best[1])
ids = [f"val-{i}" for i in range(len(val_x))] + [f"test-{i}" for i in range(len(test_x))]
labels = torch.cat([predict(val_x).argmax(1), predict(test_x).argmax(1)]).tolist()
with open("submission.csv", "w") as out:
    out.write("id,label\n")
    out.writelines(f"{i},{label}\n" for i, label in zip(ids, labels))
print("wrote submission.csv")
