"""A tiny real git repository for the ML-Bench tests: an argparse training script and a small
library for Python tasks at a pinned commit, and a later commit that breaks it (so a checkout of
HEAD would be caught)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from researchgym.mlbench.repos import RepoPin, materialize
from researchgym.mlbench.schema import Sample

TRAIN = textwrap.dedent('''
    """Train a toy model."""
    import argparse, json, time

    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", choices=["cora", "citeseer"], default="cora")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[16])
    parser.add_argument("--no-cuda", action="store_true")
    parser.add_argument("--out", default="model.json")
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    time.sleep(args.sleep)
    json.dump(vars(args), open(args.out, "w"))
    print("trained", args.dataset)
''')


TOYLIB = textwrap.dedent('''
    """A toy library for Python-task answers: a running average fitted in steps."""


    class Averager:
        def __init__(self, rate=0.5, steps=10):
            self.rate, self.steps = rate, steps

        def fit(self, values):
            estimate = 0.0
            for _ in range(self.steps):
                for value in values:
                    estimate += self.rate * (value - estimate)
            self.estimate_ = estimate
            return self


    def spread(model, values):
        return sum(abs(value - model.estimate_) for value in values) / len(values)
''')


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def make_toy_repo(origin: Path) -> str:
    """Create the repository in `origin`; return the commit to pin."""
    _git(origin, "init", "-q")
    (origin / "examples").mkdir()
    (origin / "examples" / "train.py").write_text(TRAIN)
    (origin / "examples" / "toylib.py").write_text(TOYLIB)
    (origin / "README.md").write_text("# toy\n\nRun `python train.py --dataset cora --lr 0.01` in examples/.\n")
    (origin / "examples" / "README.md").write_text("# examples\n\nTraining script: train.py.\n")
    _git(origin, "add", "-A")
    _git(origin, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "first")
    commit = _git(origin, "rev-parse", "HEAD")
    (origin / "examples" / "train.py").write_text("raise SystemExit('a later commit broke it')\n")
    _git(origin, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "second")
    return commit


def pinned_toy_tree(tmp_path_factory) -> Path:
    """The toy repository made in a fresh folder and materialised at its pinned commit."""
    origin = tmp_path_factory.mktemp("origin")
    commit = make_toy_repo(origin)
    return materialize(
        RepoPin(name="toy", source="git", url=str(origin), commit=commit), root=tmp_path_factory.mktemp("repos")
    )


#: A bash sample on the toy's training script, with its gold command.
TRAIN_SAMPLE = Sample(
    id=1,
    path="./examples",
    instruction="Train on citeseer with lr 0, 5 epochs, hidden sizes 0 and 5",
    arguments={"dataset": "citeseer", "lr": "0", "epochs": "5", "hidden-sizes": "0 5"},
    expected_outputs=["model.json"],
    expected_stdout="trained citeseer",
    timeout_s=5,
    free_arguments=["no-cuda", "sleep"],
    output="python train.py --dataset citeseer --lr 0 --epochs 5 --hidden-sizes 0 5",
)
