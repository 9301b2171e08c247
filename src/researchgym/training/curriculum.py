"""Which task the next training episode plays.

* `fixed`: the tasks in the order given, round and round.
* `weighted`: drawn at random with the given weights (equal when none are given).
* `difficulty`: drawn with weights from past results in run folders' stores: a task's success
  rate p is the share of its finished episodes that beat the baseline (final score better than
  the baseline; Laplace-smoothed, (wins + 1) / (episodes + 2)), and its weight is
  p * (1 - p) + floor. Tasks the agent sometimes solves, where there is the most to learn, come
  up most; ones it always or never solves still come up (the floor).

Every draw comes from one `random.Random(seed)`: the same seed gives the same sequence.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from researchgym.errors import UnknownNameError
from researchgym.runs.store import DB_NAME, Store
from researchgym.tasks.registry import load_task
from researchgym.tasks.spec import TaskSpec


def success_rates(tasks: list[str], run_dirs: list[str | Path]) -> dict[str, tuple[int, int]]:
    """task -> (episodes that beat the baseline, finished episodes), over every store given."""
    counts = {task: [0, 0] for task in tasks}
    specs: dict[str, TaskSpec | None] = {}
    for task in tasks:
        try:
            specs[task] = load_task(task)
        except UnknownNameError:
            specs[task] = None
    for run_dir in run_dirs:
        if not (Path(run_dir) / DB_NAME).is_file():
            raise FileNotFoundError(f"{run_dir} has no {DB_NAME}: give run folders made by `researchgym run`")
        store = Store(run_dir)
        try:
            for row in store.episodes("finished"):
                matched = next((t for t in tasks if row["task"] in (t, getattr(specs[t], "id", None))), None)
                if matched is None:
                    continue
                counts[matched][1] += 1
                spec, score = specs[matched], row["final_score"]
                if score is not None and spec is not None and spec.baseline_score is not None:
                    better = (
                        score > spec.baseline_score
                        if spec.metric.direction == "maximize"
                        else score < spec.baseline_score
                    )
                    counts[matched][0] += int(better)
        finally:
            store.close()
    return {task: (wins, total) for task, (wins, total) in counts.items()}


class Curriculum:
    def __init__(
        self,
        tasks: list[str],
        *,
        mode: str = "weighted",
        weights: list[float] | None = None,
        run_dirs: list[str | Path] | None = None,
        floor: float = 0.05,
        seed: int | None = 0,
    ) -> None:
        if not tasks:
            raise ValueError("a curriculum needs at least one task")
        if mode not in ("fixed", "weighted", "difficulty"):
            raise ValueError(f"mode must be fixed, weighted or difficulty, not {mode!r}")
        self.tasks, self.mode = list(tasks), mode
        self._rng = random.Random(seed)
        self._position = 0
        if mode == "difficulty":
            if not run_dirs:
                raise ValueError("the difficulty mode needs run folders with past results (run_dirs=...)")
            self.rates = success_rates(self.tasks, run_dirs)
            self.weights = []
            for task in self.tasks:
                wins, total = self.rates[task]
                p = (wins + 1) / (total + 2)
                self.weights.append(p * (1 - p) + floor)
        elif weights is not None:
            if len(weights) != len(self.tasks) or any(w < 0 for w in weights) or not sum(weights) > 0:
                raise ValueError("weights: one non-negative weight per task, not all zero")
            self.weights = [float(w) for w in weights]
        else:
            self.weights = [1.0] * len(self.tasks)

    @property
    def probabilities(self) -> dict[str, float]:
        total = sum(self.weights)
        return {task: w / total for task, w in zip(self.tasks, self.weights)}

    def next(self) -> str:
        if self.mode == "fixed":
            task = self.tasks[self._position % len(self.tasks)]
            self._position += 1
            return task
        return self._rng.choices(self.tasks, weights=self.weights)[0]

    def sample(self, n: int) -> list[str]:
        return [self.next() for _ in range(n)]

    def __iter__(self) -> Iterator[str]:
        while True:
            yield self.next()
