"""`researchgym tasks`: list the known tasks, or those of a folder, as a table that fits the
terminal (one block per task where no table fits) or as JSON for scripts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from researchgym.cli.common import _fail, console, err_console
from researchgym.errors import ResearchGymError

if TYPE_CHECKING:
    from researchgym.tasks.spec import TaskSpec

#: Columns printed whole or not at all: a folded id or score cannot be copied or compared.
_WHOLE = frozenset({"file", "id", "gym id", "metric", "direction", "baseline", "status"})
#: The least width a folding column (domain, needs) may get before a narrower layout is chosen.
_FOLD_MIN = 10
#: The layouts to try, widest first; where none fits, each task gets a block of its own.
_LAYOUTS = [
    ["id", "gym id", "domain", "metric", "direction", "baseline", "needs"],
    ["id", "domain", "metric", "direction", "baseline", "needs"],
]
_PATH_LAYOUTS = [["file", "id", "metric", "direction", "baseline", "needs", "status"]]

Row = dict[str, str]


def tasks(
    path: Path | None = typer.Option(
        None,
        "--path",
        help="list the tasks of this folder instead: an MLGym checkout (its configs/tasks), "
        "a folder of task folders, or a folder of task YAML files",
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="print a JSON list, one object per task (ids, metric, baseline, requirements, whether it "
        "can run here and why not), and nothing else on stdout",
    ),
) -> None:
    """List the known tasks (or those of a folder, with --path)."""
    specs, errors = _find(path)
    if as_json:
        print(json.dumps([_as_json(file, spec) for file, spec in specs], indent=1))
        for error in errors:
            err_console.print(f"[yellow]skipped a broken task:[/] {error}", highlight=False)
        return
    rows = [_row(file, spec) for file, spec in specs]
    title = f"tasks in {path}" if path else "researchgym tasks"
    _print_listing(title, _PATH_LAYOUTS if path else _LAYOUTS, rows)
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


def _find(path: Path | None) -> tuple[list[tuple[Path | None, TaskSpec]], list[ResearchGymError]]:
    """The tasks to list (with the file each came from, for --path) and the broken ones, skipped."""
    from researchgym.tasks.registry import all_tasks, tasks_in

    errors: list[ResearchGymError] = []
    if path is None:
        return [(None, spec) for spec in all_tasks(errors=errors)], errors
    try:
        found = tasks_in(path)
    except ResearchGymError as exc:
        _fail(str(exc))
    specs: list[tuple[Path | None, TaskSpec]] = []
    for found_file, loaded in found:
        if isinstance(loaded, ResearchGymError):
            errors.append(loaded)
        else:
            specs.append((found_file, loaded))
    return specs, errors


def _row(file: Path | None, spec: TaskSpec) -> Row:
    missing = set(spec.missing_requirements())
    needs = [f"{r} (missing)" if r in missing else r for r in spec.requirements]
    if spec.requires.gpus:
        needs.append(f"{spec.requires.gpus} GPU" + ("s" if spec.requires.gpus > 1 else ""))
    baseline = spec.baseline_score
    return {
        "file": file.name if file is not None else "",
        "id": spec.id,
        "gym id": spec.gym_id,
        "domain": spec.domain,
        "metric": spec.metric.name,
        "direction": spec.metric.direction,
        "baseline": f"{baseline:.6g}" if baseline is not None else "-",
        "needs": ", ".join(needs) or "-",
        "status": "unavailable" if spec.unavailable else "ready",
    }


def _as_json(file: Path | None, spec: TaskSpec) -> dict[str, Any]:
    """One task for scripts: the table's facts, unformatted, and why it cannot run here (as
    ResearchEnv would refuse it: missing data or files, extras not installed, too few GPUs)."""
    from researchgym.extras import missing_requirements_problem
    from researchgym.hardware import HardwareError, check_gpus

    missing = spec.missing_requirements()
    why_not = [lack.model_dump() for lack in spec.unavailable]
    if missing:
        why_not.append({"field": "requirements", "problem": missing_requirements_problem(missing)})
    try:
        check_gpus(spec.id, spec.requires.gpus, variants=spec.requires.cpu_alternatives)
    except HardwareError as exc:
        why_not.append({"field": "requires", "problem": str(exc)})
    return {
        "id": spec.id,
        "name": spec.name,
        "gym_id": spec.gym_id,
        "version": spec.version,
        "domain": spec.domain,
        "file": str(file if file is not None else spec.config_path),
        "metric": {"name": spec.metric.name, "direction": spec.metric.direction},
        "baseline_score": spec.baseline_score,
        "requirements": {
            "gpus": spec.requires.gpus,
            "extras": list(spec.requirements),
            "missing_extras": missing,
            "cpu_alternatives": list(spec.requires.cpu_alternatives),
        },
        "available": not why_not,
        "unavailable": why_not,
    }


def _terminal_width() -> int:
    """COLUMNS when set, even for piped output (where the shared console assumes 160 columns), else
    the console's width: `COLUMNS=80 researchgym tasks | less` gets what an 80-column terminal gets."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else console.width


def _narrowest(columns: list[str], rows: list[Row]) -> int:
    """The least width of a table of these columns that keeps the whole columns whole: rich's
    default box pads each cell by a space on either side and draws one rule more than columns."""
    widths = [max([cell_len(column)] + [cell_len(row[column]) for row in rows]) for column in columns]
    content = sum(w if c in _WHOLE else min(w, _FOLD_MIN) for c, w in zip(columns, widths, strict=True))
    return content + 3 * len(columns) + 1


def _print_listing(title: str, layouts: list[list[str]], rows: list[Row]) -> None:
    width = _terminal_width()
    out = Console(width=width, soft_wrap=False)
    for columns in layouts:
        if _narrowest(columns, rows) <= width:
            out.print(_table(title, columns, rows))
            return
    out.print(Text(title, style="bold"))
    for row in rows:
        for line in _block(row, layouts[0], width):
            out.print(line, soft_wrap=True)  # already fitted: let nothing re-wrap it


def _table(title: str, columns: list[str], rows: list[Row]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=column in _WHOLE, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(column, row[column]) for column in columns))
    return table


def _cell(column: str, value: str) -> Text:
    if column == "status":
        return Text(value, style="green" if value == "ready" else "yellow")
    return Text(value)


def _block(row: Row, columns: list[str], width: int) -> list[Text]:
    """A task as a heading (its id) and its other fields as `label: value` pairs, packed into
    indented lines no wider than `width`; a pair is never split across lines."""
    lines = [Text(row["id"], style="bold")]
    indent, gap = "  ", "   "
    line = Text(indent)
    for column in (c for c in columns if c != "id"):
        pair = Text.assemble((f"{column}: ", "dim"), _cell(column, row[column]))
        if line.cell_len > len(indent) and line.cell_len + len(gap) + pair.cell_len > width:
            lines.append(line)
            line = Text(indent)
        elif line.cell_len > len(indent):
            line.append(gap)
        line.append_text(pair)
    if line.cell_len > len(indent):
        lines.append(line)
    return lines
