"""Baseline image captioner: MLGym's recipe in plain PyTorch.

* Vocabulary: the train captions, lower-cased and split into words and punctuation; words seen
  at least 5 times; PAD 0, SOS 1, EOS 2, UNK 3.
* Data: each time an image is used, one of its captions is drawn at random. Images are resized
  to 224x224 and normalised with the ImageNet mean and std; no augmentation.
* Encoder: ResNet-50 with torchvision's ImageNet weights (data/encoder/resnet50-0676ba61.pth,
  loaded with load_state_dict: there is no network), frozen and without its last layer, then a
  trainable Linear 2048->256 and BatchNorm1d(256, momentum 0.01). The ResNet is defined below
  (torchvision's architecture, same parameter names) so only PyTorch is needed.
* Decoder: Embedding(V, 256), a 1-layer LSTM 256->512, Linear 512->V. The image feature is the
  first time step, followed by the caption's embeddings (teacher forcing, packed sequences).
* Training: Adam lr 1e-3 on everything but the ResNet, cross-entropy ignoring PAD, batch 128,
  2 epochs, seed 42.
* Captions: greedy decoding, at most 30 tokens, stopping at EOS.

Writes submission.csv (columns id, caption) for every validation and test image. Uses the GPU
when there is one. `python evaluate.py --split validation` then scores the validation rows.

    python baseline.py [--epochs 2] [--batch-size 128] [--train-limit N] [--image-size 224]
                       [--min-freq 5] [--workers 0]
"""

import argparse
import csv
import json
import random
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--train-limit", type=int, default=None, help="train on the first N training images only")
parser.add_argument("--image-size", type=int, default=224, help="images are resized to this square size")
parser.add_argument("--min-freq", type=int, default=5, help="occurrences a word needs to be in the vocabulary")
parser.add_argument("--max-tokens", type=int, default=30, help="longest generated caption, in tokens")
parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes for reading images")
args = parser.parse_args()

DATA = Path("data")
WEIGHTS = DATA / "encoder" / "resnet50-0676ba61.pth"
PAD, SOS, EOS, UNK = 0, 1, 2, 3
EMBED, HIDDEN = 256, 512
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
TOKEN = re.compile(r"\w+|[^\w\s]")

random.seed(42)
np.random.seed(42)
torch.manual_seed(42)
torch.backends.cudnn.deterministic = True
torch.backends.cudnn.benchmark = False
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tokens(text):
    return TOKEN.findall(text.lower())


# ------------------------------------------------------------------ data
train_captions = json.loads((DATA / "train_captions.json").read_text())
train_ids = list(train_captions)[: args.train_limit] if args.train_limit else list(train_captions)
validation_ids = list(json.loads((DATA / "validation_captions.json").read_text()))
test_ids = json.loads((DATA / "test_images.json").read_text())

counts = Counter(word for key in train_ids for caption in train_captions[key] for word in tokens(caption))
words = sorted((w for w, c in counts.items() if c >= args.min_freq), key=lambda w: (-counts[w], w))
itos = ["<pad>", "<sos>", "<eos>", "<unk>"] + words
stoi = {word: index for index, word in enumerate(itos)}
print(f"{len(train_ids):,} training images, vocabulary of {len(itos):,} tokens", flush=True)


def load_image(split, key):
    image = Image.open(DATA / "images" / split / f"{key}.jpg").convert("RGB")
    image = image.resize((args.image_size, args.image_size), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
    return (pixels - MEAN) / STD


class TrainSet(torch.utils.data.Dataset):
    def __len__(self):
        return len(train_ids)

    def __getitem__(self, index):
        key = train_ids[index]
        caption = random.choice(train_captions[key])  # a new draw every time the image is used
        encoded = [SOS] + [stoi.get(word, UNK) for word in tokens(caption)] + [EOS]
        return load_image("train", key), torch.tensor(encoded)


class ImageSet(torch.utils.data.Dataset):
    def __init__(self, split, ids):
        self.split, self.ids = split, ids

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        return load_image(self.split, self.ids[index])


def collate(batch):
    images, captions = zip(*batch)
    lengths = torch.tensor([len(c) for c in captions])
    return torch.stack(images), pad_sequence(list(captions), batch_first=True, padding_value=PAD), lengths


# ----------------------------------------------------------------- model
class Bottleneck(nn.Module):
    """torchvision's ResNet-50 block (stride on the 3x3 convolution), same parameter names."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet50(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for index, (planes, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]):
            layer = []
            for block in range(blocks):
                layer.append(Bottleneck(inplanes, planes, stride if block == 0 else 1))
                inplanes = planes * 4
            setattr(self, f"layer{index + 1}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = ResNet50()
        self.resnet.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
        self.resnet.fc = nn.Identity()  # 2048 pooled features
        self.resnet.requires_grad_(False)
        self.linear = nn.Linear(2048, EMBED)
        self.bn = nn.BatchNorm1d(EMBED, momentum=0.01)

    def train(self, mode=True):
        super().train(mode)
        self.resnet.eval()  # frozen, batch-norm statistics included
        return self

    def forward(self, images):
        with torch.no_grad():
            features = self.resnet(images)
        return self.bn(self.linear(features))


class Decoder(nn.Module):
    def __init__(self, vocabulary):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, EMBED)
        self.lstm = nn.LSTM(EMBED, HIDDEN, batch_first=True)
        self.linear = nn.Linear(HIDDEN, vocabulary)

    def forward(self, features, captions, lengths):
        """Logits for the packed caption tokens: step 0 sees the image and predicts SOS, step t
        sees token t-1 and predicts token t."""
        inputs = torch.cat([features.unsqueeze(1), self.embed(captions)], dim=1)
        packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
        hiddens, _ = self.lstm(packed)
        return self.linear(hiddens.data)

    @torch.no_grad()
    def greedy(self, features, max_tokens):
        inputs, state, steps = features.unsqueeze(1), None, []
        for _ in range(max_tokens):
            hiddens, state = self.lstm(inputs, state)
            predicted = self.linear(hiddens.squeeze(1)).argmax(dim=1)
            steps.append(predicted)
            inputs = self.embed(predicted).unsqueeze(1)
        return torch.stack(steps, dim=1).tolist()


encoder, decoder = Encoder().to(device), Decoder(len(itos)).to(device)
parameters = list(decoder.parameters()) + list(encoder.linear.parameters()) + list(encoder.bn.parameters())
optimizer = torch.optim.Adam(parameters, lr=args.lr)
loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
generator = torch.Generator().manual_seed(42)
loader = torch.utils.data.DataLoader(TrainSet(), batch_size=args.batch_size, shuffle=True, collate_fn=collate,
                                     num_workers=args.workers, generator=generator)

# -------------------------------------------------------------- training
started = time.time()
for epoch in range(args.epochs):
    encoder.train()
    decoder.train()
    total, steps = 0.0, 0
    for images, captions, lengths in loader:
        if len(images) < 2:
            continue  # BatchNorm1d cannot train on a single image
        images, captions = images.to(device), captions.to(device)
        targets = pack_padded_sequence(captions, lengths, batch_first=True, enforce_sorted=False).data
        logits = decoder(encoder(images), captions, lengths)
        loss = loss_fn(logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, steps = total + loss.item(), steps + 1
        if steps % 50 == 0:
            print(f"epoch {epoch + 1} step {steps}: loss {loss.item():.3f}", flush=True)
    print(f"epoch {epoch + 1}: mean loss {total / max(1, steps):.3f} ({time.time() - started:.0f}s)", flush=True)

# -------------------------------------------------------------- captions
encoder.eval()
decoder.eval()


def decode(token_ids):
    words = []
    for index in token_ids:
        if index == EOS:
            break
        if index not in (PAD, SOS, UNK):
            words.append(itos[index])
    return " ".join(words) or itos[4 if len(itos) > 4 else UNK]  # never empty: the commonest word


def captions_for(split, ids):
    loader = torch.utils.data.DataLoader(ImageSet(split, ids), batch_size=args.batch_size, num_workers=args.workers)
    results = []
    with torch.no_grad():
        for images in loader:
            results += [decode(t) for t in decoder.greedy(encoder(images.to(device)), args.max_tokens)]
    return results


written = {}
with open("submission.csv", "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["id", "caption"])
    for split, ids in (("validation", validation_ids), ("test", test_ids)):
        for key, caption in zip(ids, captions_for(split, ids)):
            writer.writerow([key, caption])
            written[key] = caption
print(f"wrote submission.csv ({len(validation_ids):,} validation and {len(test_ids):,} test captions, "
      f"{time.time() - started:.0f}s); e.g. {validation_ids[0]}: {written[validation_ids[0]]!r}", flush=True)
