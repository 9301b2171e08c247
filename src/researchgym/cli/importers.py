"""`researchgym import`: the sub-app that imports other frameworks' runs (`import mlgym`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from researchgym.cli.common import _fail, console

import_app = typer.Typer(
    help="Import other frameworks' recorded runs into a researchgym run folder.", no_args_is_help=True
)


@import_app.command("mlgym")
def import_mlgym_runs(
    source: Path = typer.Argument(..., help="an MLGym checkout, its trajectories/ folder, or one set of runs in it"),
    out: Path = typer.Option(
        ..., "--out", help="run folder to create or add to (re-importing skips episodes already there)"
    ),
    model: list[str] = typer.Option([], help="AUP over only these models (repeat); default: every imported model"),
    aup: bool = typer.Option(True, "--aup/--no-aup", help="print per-model best-attempt and best-submission AUP"),
) -> None:
    """Import MLGym's runs (<model>__<task>__...__run_<N> folders: .traj and results.json) as episodes."""
    from researchgym.importers import import_mlgym, mlgym_aup

    if not source.is_dir():
        _fail(f"{source} is not a folder (give an MLGym checkout or its trajectories/ folder)")
    result = import_mlgym(source, out)
    console.print(
        f"{result.imported} episodes imported, {result.already_there} already there, "
        f"{result.skipped} skipped -> {result.run_dir}",
        highlight=False,
    )
    if aup and (result.imported or result.already_there):
        numbers = mlgym_aup(result.run_dir, model or None)
        table = Table(title=f"AUP ({numbers['episodes']} episodes; MLGym's aggregation)")
        for column in ("method", "best attempt", "best submission"):
            table.add_column(column)
        for method, value in sorted(numbers["aup"]["best attempt"].items(), key=lambda item: -item[1]):
            table.add_row(method, f"{value:.3f}", f"{numbers['aup']['best submission'][method]:.3f}")
        console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(
        f"report: researchgym report {result.run_dir}; steps: researchgym view {result.run_dir}", highlight=False
    )
