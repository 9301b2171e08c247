"""pass@k over judged samples, two ways.

* `pass_at_k` (unbiased, Chen et al.): per task, n samples with c passing give
  1 - C(n - c, k) / C(n, k); the suite's number is the mean over tasks.
* `first_pass_at_k` (ML-Bench's original number, reported beside it for comparison only): the
  share of tasks whose first passing sample is among the first k, in the order drawn. It
  depends on the order and on n, which is why it is not the headline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from researchgym.metrics.sampling import pass_at_k as _pass_at_k


def pass_at_k(outcomes: Mapping[str, Sequence[bool]], k: int) -> float:
    """Mean unbiased pass@k over tasks; each task needs at least k samples."""
    if not outcomes:
        raise ValueError("no judged tasks")
    values = []
    for task, passed in outcomes.items():
        if len(passed) < k:
            raise ValueError(f"task {task} has {len(passed)} samples; pass@{k} needs at least {k}")
        values.append(_pass_at_k(len(passed), sum(bool(p) for p in passed), k))
    return sum(values) / len(values)


def first_pass_at_k(outcomes: Mapping[str, Sequence[bool]], k: int) -> float:
    """ML-Bench's original: the share of tasks with a passing sample among their first k."""
    if not outcomes:
        raise ValueError("no judged tasks")
    return sum(any(bool(p) for p in list(passed)[:k]) for passed in outcomes.values()) / len(outcomes)
