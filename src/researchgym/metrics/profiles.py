"""Performance profiles and AUP, exactly as MLGym computes them for its published tables.

Scores live in tables: task -> method -> score (None when a method has no valid result). The
baseline is one of the methods. For each task:

1. a score is infeasible if it is missing, negative, or worse than the baseline's;
2. among feasible scores, best and worst give each method a ratio r = best / s (maximise) or
   s / best (minimise), and worst_ratio = best / worst (maximise) or worst / best (minimise);
3. an infeasible method gets r = worst_ratio * (1 + eps), eps = 0.05;
4. tau_t = ceil(worst_ratio * (1 + eps)); over every table compared together,
   max_tau = ceil(10 * log10(max tau_t)) / 10;
5. rho_m(tau) = fraction of tasks with log10(r) <= tau, on 500 evenly spaced tau in [0, max_tau];
6. AUP_m = sum over i = 0..498 of (tau_{i+1} - tau_i) * rho_m(tau_i), rounded to 3 decimals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

EPSILON = 0.05
GRID_POINTS = 500

Table = Mapping[str, Mapping[str, float | None]]  # task -> method -> score


@dataclass(frozen=True)
class TaskRatios:
    ratios: dict[str, float]  # method -> r >= 1
    worst_ratio: float
    tau: float  # ceil(worst_ratio * (1 + eps))


def is_feasible(score: float | None, baseline: float | None, direction: str) -> bool:
    if score is None or (isinstance(score, float) and math.isnan(score)) or score < 0:
        return False
    if baseline is None:
        return True
    return score >= baseline if direction == "maximize" else score <= baseline


def task_ratios(scores: Mapping[str, float | None], baseline_method: str, direction: str,
                epsilon: float = EPSILON) -> TaskRatios:
    """Ratios of every method on one task (step 1 to 4 above)."""
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    baseline = scores.get(baseline_method)
    feasible = {m: float(s) for m, s in scores.items() if is_feasible(s, baseline, direction)}
    ratios: dict[str, float] = {}
    worst_ratio = 1.0
    if feasible:
        values = list(feasible.values())
        best = max(values) if direction == "maximize" else min(values)
        worst = min(values) if direction == "maximize" else max(values)
        worst_ratio = _ratio(best, worst, direction)
        for method, score in feasible.items():
            ratios[method] = _ratio(best, score, direction)
    penalty = worst_ratio * (1 + epsilon)
    for method in scores:
        if method not in ratios or not math.isfinite(ratios[method]):
            ratios[method] = penalty
    return TaskRatios(ratios, worst_ratio, float(math.ceil(penalty)))


def _ratio(best: float, score: float, direction: str) -> float:
    """r >= 1; a zero in a denominator gives 1 when both are zero and infinity otherwise."""
    numerator, denominator = (best, score) if direction == "maximize" else (score, best)
    if denominator == 0:
        return 1.0 if numerator == 0 else math.inf
    return numerator / denominator


def max_tau(tables_ratios: Sequence[Mapping[str, TaskRatios]]) -> float:
    taus = [ratios.tau for table in tables_ratios for ratios in table.values()]
    return math.ceil(10 * math.log10(max(taus + [1.0]))) / 10 if taus else 0.0


def profile(table_ratios: Mapping[str, TaskRatios], method: str, grid: np.ndarray) -> np.ndarray:
    """rho_m(tau) on the grid: the fraction of tasks whose log10 ratio is at most tau."""
    logs = np.array([math.log10(r.ratios[method]) for r in table_ratios.values()])
    if logs.size == 0:
        return np.zeros_like(grid)
    return (logs[None, :] <= grid[:, None] + 1e-12).mean(axis=1)


def aup(rho: np.ndarray, grid: np.ndarray) -> float:
    """Left Riemann sum of the profile over the grid, rounded to 3 decimals."""
    return round(float(np.sum(np.diff(grid) * rho[:-1])), 3)


def all_methods(tables: Mapping[str, Table]) -> list[str]:
    return sorted({m for table in tables.values() for row in table.values() for m in row})


def tables_ratios(tables: Mapping[str, Table], directions: Mapping[str, str], baseline_method: str = "baseline",
                  epsilon: float = EPSILON) -> dict[str, dict[str, TaskRatios]]:
    """{table name: {task: ratios}}; every method of any table is rated on every task
    (missing = infeasible), so tables compared together share their methods."""
    methods = all_methods(tables)
    return {
        name: {task: task_ratios({m: row.get(m) for m in methods}, baseline_method,
                                 directions.get(task, "maximize"), epsilon)
               for task, row in table.items()}
        for name, table in tables.items()
    }


def compute_aup(tables: Mapping[str, Table], directions: Mapping[str, str], baseline_method: str = "baseline",
                epsilon: float = EPSILON) -> dict[str, dict[str, float]]:
    """AUP of every method in every named table ("best", "last"), on one shared tau grid.

    Returns {table name: {method: AUP}}; methods are the union over tasks (missing = None).
    """
    all_ratios = tables_ratios(tables, directions, baseline_method, epsilon)
    grid = profile_grid(list(all_ratios.values()))
    methods = all_methods(tables)
    return {name: {m: aup(profile(ratios, m, grid), grid) for m in methods} for name, ratios in all_ratios.items()}


def profile_grid(tables_ratios: Sequence[Mapping[str, TaskRatios]]) -> np.ndarray:
    return np.linspace(0.0, max_tau(tables_ratios), GRID_POINTS)
