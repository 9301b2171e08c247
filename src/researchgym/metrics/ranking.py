"""Rankings reported beside AUP: mean rank per task (MLGym calls it Plackett-Luce) and Borda."""

from __future__ import annotations

from collections.abc import Mapping

Table = Mapping[str, Mapping[str, float | None]]


def task_ranks(scores: Mapping[str, float | None], direction: str) -> dict[str, float]:
    """1 = best; ties share the mean of their ranks; missing scores rank last (tied)."""
    present = {m: s for m, s in scores.items() if s is not None}
    order = sorted(present, key=lambda m: present[m], reverse=direction == "maximize")
    ranks: dict[str, float] = {}
    position = 0
    while position < len(order):
        same = [m for m in order[position:] if present[m] == present[order[position]]]
        for method in same:
            ranks[method] = position + (len(same) + 1) / 2
        position += len(same)
    missing = [m for m in scores if m not in present]
    for method in missing:
        ranks[method] = len(present) + (len(missing) + 1) / 2
    return ranks


def mean_ranks(table: Table, directions: Mapping[str, str]) -> dict[str, float]:
    totals: dict[str, list[float]] = {}
    for task, scores in table.items():
        for method, rank in task_ranks(scores, directions.get(task, "maximize")).items():
            totals.setdefault(method, []).append(rank)
    return {m: sum(r) / len(r) for m, r in totals.items()}


def borda(table: Table, directions: Mapping[str, str]) -> dict[str, float]:
    """Per task, each method scores (number of methods - rank); summed over tasks."""
    points: dict[str, float] = {}
    for task, scores in table.items():
        n = len(scores)
        for method, rank in task_ranks(scores, directions.get(task, "maximize")).items():
            points[method] = points.get(method, 0.0) + (n - rank)
    return points
