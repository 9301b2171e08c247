"""Metrics across tasks and methods: performance profiles and AUP, ranks, pass@k, bootstrap CIs."""

from researchgym.metrics.profiles import compute_aup, is_feasible, profile, profile_grid, task_ratios
from researchgym.metrics.ranking import borda, mean_ranks, task_ranks
from researchgym.metrics.sampling import bootstrap_ci, pass_at_k

__all__ = [
    "borda",
    "bootstrap_ci",
    "compute_aup",
    "is_feasible",
    "mean_ranks",
    "pass_at_k",
    "profile",
    "profile_grid",
    "task_ranks",
    "task_ratios",
]
