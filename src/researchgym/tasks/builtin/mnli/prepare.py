"""Build the MNLI data and the pre-trained BERT from the Hugging Face hub (runs once, on the host).

Files (JSON lines, one object {"premise", "hypothesis", "label"} per line, labels 0 entailment,
1 neutral, 2 contradiction):

* train.jsonl: SetFit/mnli `train` (its fields text1/text2 renamed premise/hypothesis).
* validation.jsonl: nyu-mll/multi_nli `validation_mismatched`, what `validate` scores.
* answers/test.jsonl (hidden): nyu-mll/multi_nli `validation_matched`, what `submit` scores.
* bert-base-uncased/: config, safetensors weights and vocabulary of google-bert/bert-base-uncased,
  so neither the agent nor the evaluator needs the network.

SetFit's own `validation` split is MultiNLI's matched validation set, i.e. the hidden test set
here: MLGym gave it to the agent (and its baseline validated on it), so it is deliberately not
copied. Rows labelled -1 (no gold label) are dropped.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from researchgym.hub import copy_hub_files, load_hub_dataset

TRAIN_REPO = "SetFit/mnli"
TEST_REPO = "nyu-mll/multi_nli"
MODEL_REPO = "google-bert/bert-base-uncased"
MODEL_FOLDER = "bert-base-uncased"
#: What BertForSequenceClassification and BertTokenizer need, weights as safetensors only.
MODEL_FILES = ["config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"]
#: The fast tokenizer's own file: used when present, else the tokenizer is built from vocab.txt.
OPTIONAL_MODEL_FILES = ["tokenizer.json"]
LABELS = ("entailment", "neutral", "contradiction")


def _write(rows, path: Path, premise: str, hypothesis: str, source: str) -> Counter:
    """Write one split as JSON lines with our field names; return the label counts."""
    counts: Counter = Counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for row in rows:
            label = int(row["label"])
            if label == -1:
                continue
            if label not in (0, 1, 2):
                raise RuntimeError(f"{source} has a label {label}; expected 0, 1, 2 (or -1 for no gold label)")
            counts[label] += 1
            out.write(json.dumps({"premise": row[premise], "hypothesis": row[hypothesis], "label": label}) + "\n")
    if not counts:
        raise RuntimeError(f"{source} has no labelled rows")
    return counts


def _summary(name: str, counts: Counter) -> str:
    per_label = ", ".join(f"{LABELS[k]} {counts[k]:,}" for k in range(3))
    return f"{name}: {sum(counts.values()):,} pairs ({per_label})"


def prepare(target: Path, report) -> None:
    report(f"loading {TRAIN_REPO} (train split only; its validation split is the hidden test set)")
    train = load_hub_dataset(TRAIN_REPO, split="train")
    counts = _write(train, target / "train.jsonl", "text1", "text2", f"{TRAIN_REPO} train")
    report(_summary("train.jsonl", counts))

    report(f"loading {TEST_REPO} (validation_mismatched -> validation, validation_matched -> hidden test)")
    mismatched = load_hub_dataset(TEST_REPO, split="validation_mismatched")
    counts = _write(mismatched, target / "validation.jsonl", "premise", "hypothesis",
                    f"{TEST_REPO} validation_mismatched")
    report(_summary("validation.jsonl", counts))
    matched = load_hub_dataset(TEST_REPO, split="validation_matched")
    counts = _write(matched, target / "answers" / "test.jsonl", "premise", "hypothesis",
                    f"{TEST_REPO} validation_matched")
    report(_summary("answers/test.jsonl (hidden)", counts))

    report(f"copying the pre-trained {MODEL_REPO} ({', '.join(MODEL_FILES)})")
    folder = target / MODEL_FOLDER
    copy_hub_files(MODEL_REPO, MODEL_FILES, folder, repo_type="model")
    for name in OPTIONAL_MODEL_FILES:
        try:
            copy_hub_files(MODEL_REPO, [name], folder, repo_type="model")
        except Exception as exc:  # optional: the tokenizer is equally built from vocab.txt
            report(f"{name} not copied ({type(exc).__name__}); the tokenizer is built from vocab.txt")
    size = sum(p.stat().st_size for p in folder.iterdir())
    report(f"{MODEL_FOLDER}/: {len(list(folder.iterdir()))} files, {size / 1e6:,.1f} MB")
