"""Reading score tables (CSV) and drawing performance profiles."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path

from researchgym.errors import ResearchGymError
from researchgym.metrics.profiles import Table, all_methods, profile, profile_grid, tables_ratios


class TableError(ResearchGymError):
    pass


def read_score_table(path: str | Path) -> dict[str, dict[str, float | None]]:
    """A CSV with a `Task` column, a `baseline` column and one column per method; an empty cell
    means no valid result. A cell that is not a finite number (including inf and nan) is an error."""
    path = Path(path)
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise TableError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not rows or "Task" not in rows[0] or "baseline" not in rows[0]:
        raise TableError(f"{path}: needs a header with 'Task', 'baseline' and one column per method")
    table: dict[str, dict[str, float | None]] = {}
    for line, row in enumerate(rows, start=2):
        task = row.pop("Task")
        values: dict[str, float | None] = {}
        for method, cell in row.items():
            cell = (cell or "").strip()
            try:
                value = float(cell) if cell else None
            except ValueError:
                raise TableError(f"{path}, line {line}, column '{method}': {cell!r} is not a number") from None
            values[method] = value
            if value is not None and not math.isfinite(value):
                raise TableError(
                    f"{path}, line {line}, column '{method}' (task '{task}'): {cell!r} is not a finite "
                    "number; leave the cell empty for no valid result"
                )
        table[task] = values
    return table


def plot_profiles(
    tables: Mapping[str, Table],
    directions: Mapping[str, str],
    path: str | Path,
    baseline_method: str = "baseline",
    *,
    negative_infeasible: bool = True,
) -> None:
    """One panel per table (best attempt, last submission): rho_m(tau) for every method, rated
    exactly as compute_aup rates them (same arguments, same grid)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = all_methods(tables)
    ratios = tables_ratios(tables, directions, baseline_method, negative_infeasible=negative_infeasible)
    grid = profile_grid(list(ratios.values()))
    figure, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4.5), squeeze=False)
    for axis, (name, table_ratios) in zip(axes[0], ratios.items()):
        for method in methods:
            axis.step(grid, profile(table_ratios, method, grid), where="post", label=method)
        axis.set_title(f"performance profile: {name}")
        axis.set_xlabel("tau (log10 ratio to the best)")
        axis.set_ylabel("fraction of tasks")
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
