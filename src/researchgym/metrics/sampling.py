"""pass@k without bias, and bootstrap confidence intervals over seeds."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """1 - C(n - c, k) / C(n, k): the chance that k of n samples, c of them correct, hold one
    correct sample (Chen et al.'s estimator; ML-Bench reports the first correct position)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(estimate, low, high): a percentile bootstrap over the given per-seed values."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    samples = data[rng.integers(0, data.size, size=(resamples, data.size))]
    stats = np.apply_along_axis(statistic, 1, samples)
    alpha = (1 - confidence) / 2
    return float(statistic(data)), float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))
