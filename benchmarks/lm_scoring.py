"""What the look-ahead check's own process costs the LM scorer, measured in one run.

    python benchmarks/lm_scoring.py [--repeats 3] [--windows 600]

Scores an untrained Shakespeare baseline model (the starter's CharGPT: 4 layers, width 128,
83 characters, scripted as baseline.py saves it) on random character ids, 32 windows of 256
per call, twice per round, alternately:

* `in-process`: the check's copy loaded in the scorer's own process (how the scorer ran before
  the red team's memory channel: kept here only as the yardstick);
* `own process`: lm_scoring.CheckCopy, what the evaluators use.

Both give the same loss to the last digit (the script fails otherwise). It prints the median
wall time of each and their ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from researchgym.tasks.registry import BUILTIN_DIR

CONTEXT, ROWS, VOCAB = 256, 32, 83


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class InProcessCheck:
    """The check's copy in the scorer's process, answering as CheckCopy does."""

    def __init__(self, scoring, path: str) -> None:
        self.scoring, self.model = scoring, scoring.load_model(path, torch.device("cpu"))

    def log_probs(self, ids: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        logits = self.scoring._logits(self.model, ids, VOCAB)
        return torch.stack([self.scoring.next_token_log_probs(logits[r, :-1], index[r]) for r in range(len(ids))])

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--windows", type=int, default=600, help="windows of 256 characters scored per run")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(2)
    scoring = load(BUILTIN_DIR / "_shared" / "lm_scoring.py", "lm_scoring")
    sys.path.insert(0, str(BUILTIN_DIR / "shakespeare_char" / "starter"))
    baseline = load(BUILTIN_DIR / "shakespeare_char" / "starter" / "baseline.py", "shakespeare_baseline")
    torch.manual_seed(0)
    model = baseline.CharGPT(VOCAB)
    model.eval()
    folder = Path(tempfile.mkdtemp(prefix="lm-scoring-bench-"))
    path = str(folder / "model.pt")
    torch.jit.script(model).save(path)
    tokens = torch.randint(0, VOCAB, (args.windows * CONTEXT,), generator=torch.Generator().manual_seed(1))
    cpu = torch.device("cpu")
    times: dict[str, list[float]] = {"in-process": [], "own process": []}
    losses: dict[str, set[float]] = {name: set() for name in times}
    for _ in range(args.repeats):
        for name in times:
            started = time.perf_counter()
            scored_model = scoring.load_model(path, cpu)
            check = InProcessCheck(scoring, path) if name == "in-process" else scoring.CheckCopy(path, cpu, VOCAB)
            with check:
                options = dict(context=CONTEXT, vocab=VOCAB, rows=ROWS, rng=random.Random(0), device=cpu)
                total, count = scoring.window_loss(scored_model, check, tokens, **options)
            times[name].append(time.perf_counter() - started)
            losses[name].add(total / count)
    if len(losses["in-process"] | losses["own process"]) != 1:
        raise SystemExit(f"the two checks scored differently: {losses}")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name:12s} median {median:6.2f} s  ({', '.join(f'{t:.2f}' for t in times[name])})")
    print(
        f"own process / in-process: {medians['own process'] / medians['in-process']:.2f}x "
        f"({args.windows} windows of {CONTEXT}, loss {losses['own process'].pop():.6f})"
    )


if __name__ == "__main__":
    main()
