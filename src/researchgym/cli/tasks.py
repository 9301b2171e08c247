"""`researchgym tasks`: list the known tasks, or those of a folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from researchgym.cli.common import _fail, console
from researchgym.errors import ResearchGymError

if TYPE_CHECKING:
    from researchgym.tasks.spec import TaskSpec


def tasks(
    path: Path | None = typer.Option(
        None,
        "--path",
        help="list the tasks of this folder instead: an MLGym checkout (its configs/tasks), "
        "a folder of task folders, or a folder of task YAML files",
    ),
) -> None:
    """List the known tasks (or those of a folder, with --path)."""
    from researchgym.tasks.registry import all_tasks, tasks_in

    table = Table(title=f"tasks in {path}" if path else "researchgym tasks")
    columns = ["id", "gym id", "domain", "metric", "direction", "baseline", "needs"]
    if path:
        columns = ["file", "id", "metric", "direction", "baseline", "needs", "status"]
    for column in columns:
        table.add_column(column, no_wrap=column in ("id", "gym id", "needs", "file"))
    errors: list[ResearchGymError] = []
    if path:
        try:
            found = tasks_in(path)
        except ResearchGymError as exc:
            _fail(str(exc))
            return
        specs: list[tuple[Path | None, TaskSpec]] = []
        for found_file, loaded in found:
            if isinstance(loaded, ResearchGymError):
                errors.append(loaded)
            else:
                specs.append((found_file, loaded))
    else:
        specs = [(None, spec) for spec in all_tasks(errors=errors)]
    for file, spec in specs:
        baseline = spec.baseline_score
        missing = set(spec.missing_requirements())
        needs_list = [f"{r} (missing)" if r in missing else r for r in spec.requirements]
        if spec.requires.gpus:
            needs_list.append(f"{spec.requires.gpus} GPU" + ("s" if spec.requires.gpus > 1 else ""))
        needs = ", ".join(needs_list) or "-"
        score = f"{baseline:.6g}" if baseline is not None else "-"
        if file is None:
            table.add_row(spec.id, spec.gym_id, spec.domain, spec.metric.name, spec.metric.direction, score, needs)
        else:
            status = "[yellow]unavailable[/]" if spec.unavailable else "[green]ready[/]"
            table.add_row(file.name, spec.id, spec.metric.name, spec.metric.direction, score, needs, status)
    console.print(table)
    for file, spec in specs:
        for lack in spec.unavailable:
            where = file.name if file is not None else spec.id
            console.print(f"[yellow]{where}[/] cannot run here: {lack.field}: {lack.problem}", highlight=False)
    for error in errors:
        console.print(f"[yellow]skipped a broken task:[/] {error}", highlight=False)
    if path and specs:
        ready = [str(file) for file, spec in specs if not spec.unavailable]
        console.print(
            f"{len(ready)} of {len(specs)} ready; run them all: researchgym run {path} --agent baseline",
            highlight=False,
        )
