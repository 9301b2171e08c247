"""`researchgym report`: a run's tables and plots."""

from __future__ import annotations

from pathlib import Path

import typer

from researchgym.cli.common import _fail, console
from researchgym.errors import ResearchGymError


def report(
    run_dir: Path = typer.Argument(..., help="folder holding the run's trajectory files"),
    out: Path | None = typer.Option(None, help="where to write (default RUN_DIR/report)"),
) -> None:
    """Tables (scores, AUP, ranks, cost, exit statuses, actions) and plots of a run."""
    from researchgym.analysis.report import build_report

    try:
        folder = build_report(run_dir, out)
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    console.print(f"report: {folder / 'report.md'} and {folder / 'report.html'}", highlight=False)
