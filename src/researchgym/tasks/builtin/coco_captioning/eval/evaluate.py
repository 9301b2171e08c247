"""Score submission.csv for COCO captioning: BLEU of the submitted captions against the
reference captions, computed here (MLGym averaged a `bleu_score` column the agent wrote itself).

    python evaluate.py --split validation|test

submission.csv has the columns `id` and `caption`; every id of the split must appear exactly
once with a non-empty caption of at most 300 characters. Other columns and the other split's
rows are ignored. The references are data/validation_captions.json (validation) or
data/answers/test_captions.json (test; only the evaluation of a `submit` can read it).

Both texts are lower-cased and split into words and punctuation (`\\w+|[^\\w\\s]`); the tokens
are joined with single spaces. Metrics (one JSON line):

* `BLEU Score` (the task's metric, MLGym's name and definition): the mean over images of NLTK's
  `sentence_bleu([reference], caption)` with default weights and no smoothing, where the
  reference is ONE caption per image (the first one listed for it, fixed when the data was built)
  and both are passed as strings. NLTK then counts n-grams of characters, so this is
  character-level BLEU-4 (spaces included), exactly as MLGym computed it; a caption shorter than
  4 characters, or without any 4-character match, scores 0.
* `bleu4`: standard corpus-level word BLEU-4 (NLTK `corpus_bleu` on token lists, no smoothing)
  against all the reference captions of each image.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import warnings

from agent_link import report as emit
from isolation import take_secrets

TOKEN = re.compile(r"\w+|[^\w\s]")
MAX_CAPTION_CHARS = 300
REFERENCES = {"validation": "data/validation_captions.json", "test": "data/answers/test_captions.json"}


class Rejected(Exception):
    """The submission cannot be scored; `status` says why (see docs/task-authoring.md)."""

    def __init__(self, message: str, status: str = "evaluation_format_error") -> None:
        super().__init__(message)
        self.status = status


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def normalised(text: str) -> str:
    return " ".join(tokens(text))


def read_references(split: str) -> dict[str, list[str]]:
    path = REFERENCES[split]
    try:
        with open(path, encoding="utf-8") as handle:
            references = json.load(handle)
    except OSError as exc:
        hint = " (the test captions are hidden: only `submit` scores the test split)" if split == "test" else ""
        raise Rejected(f"cannot read the {split} references {path}: {exc.strerror or exc}{hint}",
                       "evaluation_error") from exc
    if not isinstance(references, dict) or not references:
        raise Rejected(f"{path} is not a mapping of image ids to captions", "evaluation_error")
    return references


def read_submission(ids: list[str], split: str) -> dict[str, str]:
    """The caption of every id of the split, checked."""
    try:
        with open("submission.csv", newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            if not {"id", "caption"} <= set(columns):
                raise Rejected(f"submission.csv needs the columns id and caption (it has {columns})")
            rows = list(reader)
    except FileNotFoundError as exc:
        raise Rejected("submission.csv was not found in the workspace root", "submission_not_found") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Rejected(f"cannot read submission.csv: {exc}") from exc
    wanted = set(ids)
    captions: dict[str, str] = {}
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        key = (row.get("id") or "").strip()
        if key in seen:
            raise Rejected(f"submission.csv repeats the id {key!r} (line {line})")
        seen.add(key)
        if key not in wanted:
            continue  # the other split's rows, or anything else: not scored here
        caption = row.get("caption")
        if caption is None or not caption.strip():
            raise Rejected(f"the caption for {key} is empty (line {line})")
        if len(caption) > MAX_CAPTION_CHARS:
            raise Rejected(f"the caption for {key} has {len(caption)} characters; at most {MAX_CAPTION_CHARS} "
                           f"are allowed (line {line})")
        if not tokens(caption):
            raise Rejected(f"the caption for {key} has no words (line {line})")
        captions[key] = caption
    missing = [key for key in ids if key not in captions]
    if missing:
        raise Rejected(f"submission.csv lacks {len(missing)} of the {len(ids)} {split} ids, e.g. {missing[:3]} "
                       f"(one row per {split} image is needed, with the columns id and caption)")
    return captions


def score(references: dict[str, list[str]], captions: dict[str, str]) -> dict[str, float]:
    from nltk.translate.bleu_score import corpus_bleu, sentence_bleu

    ids = list(references)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NLTK warns for every caption with no 4-gram match
        character = [sentence_bleu([normalised(references[key][0])], normalised(captions[key])) for key in ids]
        word = corpus_bleu([[tokens(r) for r in references[key]] for key in ids],
                           [tokens(captions[key]) for key in ids])
    return {"BLEU Score": float(sum(character) / len(character)), "bleu4": float(word)}


def main() -> int:
    take_secrets()  # nothing random here; the result goes to the channel only the evaluator can write

    def report(**fields) -> None:
        emit(fields)

    parser = argparse.ArgumentParser()
    parser.add_argument("--split", choices=sorted(REFERENCES),
                        default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    args = parser.parse_args()
    try:
        references = read_references(args.split)
        captions = read_submission(list(references), args.split)
        metrics = score(references, captions)
    except Rejected as exc:
        print(f"evaluation failed: {exc}", file=sys.stderr)
        report(error=str(exc), status=exc.status)
        return 1
    report(**metrics, images=len(references), split=args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
