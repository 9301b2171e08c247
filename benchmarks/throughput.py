"""Episodes per minute with a model that sleeps L seconds a call, at 1, 8, 32 and 64 concurrent
episodes (local executor) and with the Ray executor on this machine.

Each episode makes C calls (C-1 `echo step` actions, then `submit`) on a task whose evaluation
is trivial. With N episodes at once and W waves (W * N episodes in all), the ideal wall time is
W * C * L; efficiency is ideal / measured. Overheads measured: sandbox start, steps, evaluation,
store writes, threads. Several waves show the steady state, where one episode's start-up and
scoring overlap other episodes' waiting; a single wave starts (and ends) every episode at once.

    python benchmarks/throughput.py [--sleep 1] [--calls 10] [--waves 3] [--ray]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
import time
from pathlib import Path

from researchgym.runs.runner import Method, RunConfig, Runner


def tiny_task(root: Path) -> Path:
    folder = root / "instant"
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "evaluate.py").write_text("print('{\"score\": 1.0}')\n")
    (folder / "task.yaml").write_text(
        textwrap.dedent("""\
        id: instant
        name: Instant
        description: Do nothing, then submit.
        evaluation: {command: python3 -S evaluate.py, files: [{src: eval/evaluate.py}], has_test_split: false}
        metric: {name: score, direction: maximize}
        baseline: {scores: [{score: 1.0}]}
        limits: {max_steps: 100}
        """)
    )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--waves", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also run 8 concurrent episodes on the Ray executor")
    args = parser.parse_args()
    os.environ["RESEARCHGYM_SLEEP_S"], os.environ["RESEARCHGYM_SLEEP_CALLS"] = str(args.sleep), str(args.calls)
    root = Path(tempfile.mkdtemp(prefix="researchgym-throughput-"))
    task = str(tiny_task(root))
    method = Method("react", "researchgym.models.scripted:SleepingModel")
    ideal_s = args.calls * args.sleep
    print(
        f"throughput: {args.calls} calls of {args.sleep:g}s per episode (ideal {ideal_s:g}s), {args.waves} waves, "
        f"{os.cpu_count()} cpus\n"
    )
    print(
        f"{'executor':10} {'at once':>8} {'episodes':>8} {'wall s':>8} {'eps/min':>8} "
        f"{'ideal/min':>10} {'efficiency':>10}"
    )
    cases = [("local", n) for n in (1, 8, 32, 64)] + ([("ray", 8)] if args.ray else [])
    for executor, n in cases:
        total = n * args.waves
        config = RunConfig(
            tasks=[task],
            methods=[method],
            seeds=list(range(total)),
            max_episodes=n,
            max_sandboxes=n,
            max_calls_per_provider=n,
        )
        started = time.perf_counter()
        counts = Runner(root / f"{executor}-{n}", config, executor=executor).run()
        wall = time.perf_counter() - started
        assert counts == {"finished": total}, counts
        rate, ideal = total / wall * 60, n / ideal_s * 60
        print(f"{executor:10} {n:8d} {total:8d} {wall:8.1f} {rate:8.1f} {ideal:10.1f} {rate / ideal:10.1%}", flush=True)


if __name__ == "__main__":
    main()
