"""Time to judge one ML-Bench answer on the offline suite: the strict judge (what ran) beside the
paper's rules (`--judge original`), per repository, over the labelled answers.

    .venv/bin/python benchmarks/mlbench_judge.py [--repos tokenizers,scikit-learn] [--sandbox bwrap]

Prints p50 and max seconds per repository for both modes and the strict/original ratio of the
p50s (the cost of recording what ran; over all answers, of the total times), all measured in
this one run. Needs the `mlbench` extra.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict

from researchgym.mlbench.data import load_samples, suite_dir
from researchgym.mlbench.judge import Judge
from researchgym.mlbench.llm import Repositories
from researchgym.mlbench.repos import suite_pins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", default="", help="comma-separated repository names (default: all)")
    parser.add_argument("--sandbox", default="bwrap", choices=["bwrap", "local"])
    args = parser.parse_args()
    wanted = {name for name in args.repos.split(",") if name}
    samples = {s.key: s for s in load_samples("offline")}
    rows = [
        json.loads(line)
        for line in (suite_dir("offline") / "labelled_answers.jsonl").read_text().splitlines()
        if line.strip()
    ]
    repos = Repositories(suite_pins("offline"))
    judges: dict[tuple[str, str], Judge] = {}
    seconds: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        sample = samples[row["sample"]]
        if wanted and sample.repo_name not in wanted:
            continue
        tree = repos.tree(sample.repo_name)  # materialised once per repository
        for mode in ("strict", "original"):
            judge = judges.setdefault((sample.repo_name, mode), Judge(tree, sandbox=args.sandbox, mode=mode))
            started = time.perf_counter()
            judge.judge(sample, row["language"], row["code"])
            seconds[(sample.repo_name, mode)].append(time.perf_counter() - started)
    print(
        f"{'repository':<14} {'answers':>7} {'strict p50':>10} {'max':>6} {'original p50':>12} {'max':>6} {'ratio':>6}"
    )
    every = {"strict": [], "original": []}
    for name in sorted({repo for repo, _ in seconds}):
        strict, original = seconds[(name, "strict")], seconds[(name, "original")]
        every["strict"] += strict
        every["original"] += original
        ratio = statistics.median(strict) / statistics.median(original)
        print(
            f"{name:<14} {len(strict):>7} {statistics.median(strict):>10.2f} {max(strict):>6.2f} "
            f"{statistics.median(original):>12.2f} {max(original):>6.2f} {ratio:>6.2f}"
        )
    s, o = every["strict"], every["original"]
    # the pooled times are bimodal (0.2 s and 3 s repositories): the ratio of totals, not of p50s
    print(
        f"{'all':<14} {len(s):>7} {statistics.median(s):>10.2f} {max(s):>6.2f} {statistics.median(o):>12.2f} "
        f"{max(o):>6.2f} {sum(s) / sum(o):>6.2f} (ratio of the total times)"
    )


if __name__ == "__main__":
    main()
