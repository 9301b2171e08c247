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

MLGym's formula is only defined when every feasible score of a task is > 0. Every other legal
input is handled by the rules below, none of which changes a task whose feasible scores are all
positive (there the numbers are MLGym's, operation for operation):

* Non-finite scores (inf, -inf, nan) are not legal: they raise NonFiniteScoreError, a ValueError
  naming the table, the task and the method. None still means "no valid result" (infeasible).
* Zero and sign rule. Let lo and hi be the lowest and highest feasible scores of a task. If
  lo <= 0 (a score of exactly 0, the only case under MLGym's feasibility rule, or any negative
  score when negative_infeasible=False), best / s or s / best divides by zero or mixes signs.
  The task's scores are then shifted onto a positive scale, s' = s - lo + (hi - lo), so that the
  lowest feasible score lands on hi - lo > 0 and the highest on 2 (hi - lo), and MLGym's formula is
  applied to s'. With t = (s - lo) / (hi - lo) in [0, 1] this gives r = 2 / (1 + t) (maximise)
  and r = 1 + t (minimise): the best feasible score has r = 1, the worst r = worst_ratio = 2, the
  order of the methods is kept, and the result does not depend on the unit or offset of the
  metric. If every feasible score is equal (e.g. all 0), every feasible ratio is 1. Infeasible
  methods then get 2 * (1 + eps) as usual (1 + eps when all feasible scores are equal).
* A ratio too large for floats (positive feasible scores more than about 308 orders of magnitude
  apart, where best / s overflows or worst_ratio * (1 + eps) would) is clipped to ratio_cap(eps),
  the largest float r with r * (1 + eps) finite (about 1.7e308 / (1 + eps)). Wherever MLGym's
  computation gives finite numbers nothing is clipped; everywhere every ratio, tau_t and max_tau
  is a finite number (ratios >= 1, max_tau >= 0) and no log10 is ever taken of 0 or infinity.

MLGym's rule that a negative score is infeasible is the default, since published numbers depend
on it. Pass negative_infeasible=False for metrics that are legitimately negative (rewards, an R^2
below zero): negative scores are then feasible and the zero and sign rule rates them.
A negative baseline never makes anything fail: under the default it is simply infeasible (and
still the bar other scores must reach).
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from researchgym.errors import ResearchGymError

EPSILON = 0.05
GRID_POINTS = 500

Table = Mapping[str, Mapping[str, float | None]]  # task -> method -> score


class NonFiniteScoreError(ResearchGymError, ValueError):
    """A score is inf, -inf or nan. The message names the table, the task and the method when known."""

    def __init__(self, score: float, method: str = "", task: str = "", table: str = "") -> None:
        self.score, self.method, self.task, self.table = score, method, task, table
        where = f"score of method '{method}'" if method else "score"
        if task:
            where += f" on task '{task}'"
        if table:
            where += f" (table '{table}')"
        super().__init__(f"{where} is {score!r}: scores must be finite numbers")


@dataclass(frozen=True)
class TaskRatios:
    ratios: dict[str, float]  # method -> r >= 1, finite
    worst_ratio: float
    tau: float  # ceil(worst_ratio * (1 + eps))


def check_finite(score: float | None, method: str = "", task: str = "", table: str = "") -> None:
    """Raise NonFiniteScoreError if the score is inf, -inf or nan; None (no valid result) passes."""
    if score is None:
        return
    try:
        value = float(score)
    except OverflowError:  # an int beyond the float range
        value = math.inf if score > 0 else -math.inf
    if not math.isfinite(value):
        raise NonFiniteScoreError(value, method, task, table)


def is_feasible(
    score: float | None, baseline: float | None, direction: str, *, negative_infeasible: bool = True
) -> bool:
    """Whether a score counts: present, not negative (MLGym's rule, unless negative_infeasible is
    False) and at least as good as the baseline's. A non-finite score or baseline raises."""
    check_finite(score)
    check_finite(baseline, "baseline")
    if score is None or (negative_infeasible and score < 0):
        return False
    if baseline is None:
        return True
    return score >= baseline if direction == "maximize" else score <= baseline


def task_ratios(
    scores: Mapping[str, float | None],
    baseline_method: str,
    direction: str,
    epsilon: float = EPSILON,
    *,
    negative_infeasible: bool = True,
    task: str = "",
    table: str = "",
) -> TaskRatios:
    """Ratios of every method on one task (step 1 to 4 and the rules above). `task` and `table`
    only name the place in the error raised for a non-finite score."""
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon!r}")
    for method, score in scores.items():
        check_finite(score, method, task, table)
    baseline = scores.get(baseline_method)
    feasible = {
        m: float(s)
        for m, s in scores.items()
        if s is not None and is_feasible(s, baseline, direction, negative_infeasible=negative_infeasible)
    }
    ratios: dict[str, float] = {}
    worst_ratio = 1.0
    if feasible:
        values = list(feasible.values())
        lo, hi = min(values), max(values)
        best, worst = (hi, lo) if direction == "maximize" else (lo, hi)
        if lo > 0:  # MLGym's formula
            cap = ratio_cap(epsilon)
            worst_ratio = _ratio(best, worst, direction, cap)
            for method, score in feasible.items():
                ratios[method] = _ratio(best, score, direction, cap)
        else:  # zero and sign rule: MLGym's formula on the shifted scale s - lo + (hi - lo)
            worst_ratio = _shifted_ratio(worst, lo, hi, direction)
            for method, score in feasible.items():
                ratios[method] = _shifted_ratio(score, lo, hi, direction)
    penalty = worst_ratio * (1 + epsilon)
    for method in scores:
        if method not in ratios:
            ratios[method] = penalty
    return TaskRatios(ratios, worst_ratio, float(math.ceil(penalty)))


@functools.cache
def ratio_cap(epsilon: float = EPSILON) -> float:
    """The largest float r for which the penalty r * (1 + epsilon) is still finite."""
    factor = 1 + epsilon
    cap = sys.float_info.max / factor
    while not math.isfinite(cap * factor):
        cap = math.nextafter(cap, 0.0)
    while math.isfinite(math.nextafter(cap, math.inf) * factor):
        cap = math.nextafter(cap, math.inf)
    return max(cap, 1.0)


def _ratio(best: float, score: float, direction: str, cap: float) -> float:
    """MLGym's r for positive scores, clipped to cap when it is too large for floats."""
    numerator, denominator = (best, score) if direction == "maximize" else (score, best)
    return min(numerator / denominator, cap)


def _shifted_ratio(score: float, lo: float, hi: float, direction: str) -> float:
    """r of a feasible score on the scale s - lo + (hi - lo): 2 / (1 + t) (maximise) or 1 + t
    (minimise), t = (score - lo) / (hi - lo); 1 when every feasible score is equal."""
    if hi == lo:
        return 1.0
    span = hi - lo
    if math.isfinite(span):
        t = (score - lo) / span
    else:  # hi - lo overflows (scores near +-1.8e308): halve first, the quotient is the same
        t = (score / 2 - lo / 2) / (hi / 2 - lo / 2)
    t = min(max(t, 0.0), 1.0)
    return 2 / (1 + t) if direction == "maximize" else 1 + t


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


def tables_ratios(
    tables: Mapping[str, Table],
    directions: Mapping[str, str],
    baseline_method: str = "baseline",
    epsilon: float = EPSILON,
    *,
    negative_infeasible: bool = True,
) -> dict[str, dict[str, TaskRatios]]:
    """{table name: {task: ratios}}; every method of any table is rated on every task
    (missing = infeasible), so tables compared together share their methods.

    Raises NonFiniteScoreError (naming table, task and method) for an inf, -inf or nan score."""
    for name, table in tables.items():
        for task, row in table.items():
            for method, score in row.items():
                check_finite(score, method, task, name)
    methods = all_methods(tables)
    return {
        name: {
            task: task_ratios(
                {m: row.get(m) for m in methods},
                baseline_method,
                directions.get(task, "maximize"),
                epsilon,
                negative_infeasible=negative_infeasible,
                task=task,
                table=name,
            )
            for task, row in table.items()
        }
        for name, table in tables.items()
    }


def compute_aup(
    tables: Mapping[str, Table],
    directions: Mapping[str, str],
    baseline_method: str = "baseline",
    epsilon: float = EPSILON,
    *,
    negative_infeasible: bool = True,
) -> dict[str, dict[str, float]]:
    """AUP of every method in every named table ("best", "last"), on one shared tau grid.

    Returns {table name: {method: AUP}}; methods are the union over tasks (missing = None).
    Every AUP lies in [0, max_tau]. Raises NonFiniteScoreError for an inf, -inf or nan score.
    """
    all_ratios = tables_ratios(tables, directions, baseline_method, epsilon, negative_infeasible=negative_infeasible)
    grid = profile_grid(list(all_ratios.values()))
    methods = all_methods(tables)
    return {name: {m: aup(profile(ratios, m, grid), grid) for m in methods} for name, ratios in all_ratios.items()}


def profile_grid(tables_ratios: Sequence[Mapping[str, TaskRatios]]) -> np.ndarray:
    return np.linspace(0.0, max_tau(tables_ratios), GRID_POINTS)
