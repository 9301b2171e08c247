"""`researchgym prepare`: build a task's datasets into the cache."""

from __future__ import annotations

from typing import Any

import typer

from researchgym.cli.common import _fail, console
from researchgym.errors import ResearchGymError


def prepare(task: str = typer.Argument(..., help="task id, name or path")) -> None:
    """Build the task's datasets into the cache (done automatically on first use)."""
    from researchgym.datasets import prepare_dataset
    from researchgym.tasks.registry import load_task

    try:
        spec = load_task(task)
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    missing = spec.missing_requirements()
    if missing:  # its prepare script would die on an import, in a traceback
        from researchgym.extras import missing_requirements_problem

        _fail(f"{spec.id}: cannot prepare: the task {missing_requirements_problem(missing)}")
    prepared = [ds for ds in spec.datasets if ds.prepare]
    if not prepared:
        console.print(f"{spec.id}: nothing to prepare (its data ships with it)")
        return
    for ds in prepared:
        target = spec.dataset_path(ds)
        with console.status(f"preparing {ds.name} into {target}") as status:

            def show(line: str, name: str = ds.name, status: Any = status) -> None:
                status.update(f"{name}: {line}")

            try:
                digests = prepare_dataset(spec.path(ds.prepare or ""), target, on_line=show)
            except ResearchGymError as exc:
                _fail(str(exc))
                return
        console.print(f"[green]ready[/]: {ds.name} at {target}")
        for name, digest in digests.items():
            console.print(f"  {digest[:16]}  {name}", highlight=False)
