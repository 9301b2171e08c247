"""`researchgym aup`: AUP and performance profiles for any score table."""

from __future__ import annotations

from pathlib import Path

import typer

from researchgym.cli.common import _fail, console
from researchgym.errors import ResearchGymError


def aup(
    best: Path = typer.Option(..., help="CSV of best-attempt scores: Task, baseline, one column per method"),
    last: Path | None = typer.Option(None, help="CSV of best-submission (last) scores, same layout"),
    minimize: list[str] = typer.Option([], help="a task whose metric is minimised (repeat the option)"),
    plot: Path | None = typer.Option(None, help="also draw the performance profiles to this PNG/SVG"),
) -> None:
    """AUP (MLGym's area under the performance profile) for any score table."""
    from researchgym.metrics import compute_aup
    from researchgym.metrics.tables import plot_profiles, read_score_table

    try:
        tables = {"best": read_score_table(best)}
        if last is not None:
            tables["last"] = read_score_table(last)
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    tasks = {task for table in tables.values() for task in table}
    unknown = sorted(set(minimize) - tasks)
    if unknown:
        _fail(f"--minimize names tasks not in the tables: {', '.join(unknown)} (tasks: {', '.join(sorted(tasks))})")
    directions = {task: "minimize" if task in minimize else "maximize" for task in tasks}
    result = compute_aup(tables, directions)
    print("Model,Best AUP,Last AUP")
    for method in sorted(result["best"], key=lambda m: -result["best"][m]):
        last_value = f"{result['last'][method]:.3f}" if "last" in result else ""
        print(f"{method},{result['best'][method]:.3f},{last_value}")
    if plot is not None:
        plot_profiles(tables, directions, plot)
        console.print(f"profiles: {plot}", highlight=False, style="dim")
