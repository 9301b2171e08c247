"""Score submission.csv for an image-classification task: accuracy on the validation or the
hidden test images (Fashion-MNIST, CIFAR-10, MNIST-5k share this file).

    python evaluate.py --split validation|test

Reads data/validation.npz (`labels`) and, for the test split, data/answers/test_labels.npy,
which only the evaluator is given. Rows are matched by `id` (val-N / test-N); every id of the
split must appear exactly once with a label from 0 to 9. Reports `accuracy` on the result
channel (agent_link.report; a JSON line when run by hand).
"""

import argparse
import csv
import os
import sys

import numpy as np

from agent_link import report, report_error


def fail(message: str) -> None:
    report_error(message)
    sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    args = parser.parse_args()
    if args.split == "test":
        truth, prefix = np.load("data/answers/test_labels.npy"), "test-"
    else:
        truth, prefix = np.load("data/validation.npz")["labels"], "val-"
    try:
        with open("submission.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        fail(f"cannot read submission.csv: {exc}")
    if not rows or not {"id", "label"} <= set(rows[0]):
        fail("submission.csv needs the columns id and label")
    predicted: dict[str, int] = {}
    for row in rows:
        if row["id"] in predicted:
            fail(f"submission.csv repeats the id {row['id']}")
        try:
            predicted[row["id"]] = int(row["label"])
        except ValueError:
            fail(f"label {row['label']!r} for {row['id']} is not an integer")
    ids = [f"{prefix}{i}" for i in range(len(truth))]
    missing = [i for i in ids if i not in predicted]
    if missing:
        fail(f"submission.csv lacks {len(missing)} {args.split} ids, e.g. {missing[:3]}")
    labels = np.array([predicted[i] for i in ids])
    if labels.min() < 0 or labels.max() > 9:
        fail("labels must be integers from 0 to 9")
    report({"accuracy": float((labels == truth).mean()), "split": args.split})


if __name__ == "__main__":
    main()
