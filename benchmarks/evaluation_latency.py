"""How long `validate` takes on the game tasks (the evaluation protocol's cost per scoring).

    python benchmarks/evaluation_latency.py [--repeats 7] [--tasks battleOfSexes prisonersDilemma blotto]
                                            [--strategy starter|constant]

Plays the starter strategy (or, with `--strategy constant`, one that always answers the same
move, so that what is left is the protocol's own cost): reset, then `validate` several times in
a bwrap sandbox, and prints the median and spread of the whole `validate` step (snapshot, the
evaluator's sandbox, the agent code's sandbox, 10,000 games x 10 rounds over the link, the
result channel) per task. It uses only the public API, so the same script measures an older checkout too
(`PYTHONPATH=<checkout>/src python benchmarks/evaluation_latency.py`), which is how the
before/after figures in RESULTS.md were taken.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import researchgym

#: A strategy.py whose row_strategy costs next to nothing, per task.
CONSTANT = {"blotto": "[20, 20, 20, 20, 20, 20]"}


def measure(task: str, repeats: int, strategy: str = "starter") -> list[float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = researchgym.make(task)
        env.reset(seed=0)
    try:
        if strategy == "constant":
            move = CONSTANT.get(task, "0")
            env.step(f"printf 'def row_strategy(history):\\n    return {move}\\n' > strategy.py")
        env.step("validate")  # warm: the first one compiles bytecode and fills caches
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            observation, *_ = env.step("validate")
            times.append(time.perf_counter() - started)
            if "Validation score" not in observation:
                raise SystemExit(f"{task}: validate failed:\n{observation}")
        return times
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--tasks", nargs="+", default=["battleOfSexes", "prisonersDilemma", "blotto"])
    parser.add_argument("--strategy", choices=["starter", "constant"], default="starter")
    args = parser.parse_args()
    print(f"{'task':<18} {'validate p50':>13} {'min':>8} {'max':>8}   ({args.strategy} strategy)")
    for task in args.tasks:
        times = measure(task, args.repeats, args.strategy)
        print(f"{task:<18} {statistics.median(times):>12.3f}s {min(times):>7.3f}s {max(times):>7.3f}s")


if __name__ == "__main__":
    main()
