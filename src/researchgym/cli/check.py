"""`researchgym check`: conformance checks of sandboxes and tasks."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.markup import escape
from rich.table import Table

from researchgym.cli.common import console


def check(
    task: list[str] = typer.Argument(None, help="tasks to check (ids, names or paths); none: the sandboxes only"),
    sandbox: list[str] = typer.Option(["bwrap"], help="sandbox providers to check (repeat for several)"),
    all_tasks: bool = typer.Option(False, "--all", help="check every task found (those that cannot run are skipped)"),
    baseline: bool = typer.Option(False, "--baseline", help="also play each task's baseline and compare its score"),
    as_json: bool = typer.Option(False, "--json", help="print the checks as JSON"),
) -> None:
    """Conformance checks before you trust a score: each sandbox's shell protocol and isolation,
    and each task's Gymnasium contract, hidden files, read-only data, evaluator and (--baseline)
    baseline. Exits 1 if any check fails."""
    from researchgym.conformance import check_sandbox, check_task
    from researchgym.tasks.registry import all_tasks as every_task

    names = list(task or [])
    if all_tasks:
        names += [spec.id for spec in every_task()]
    results = []
    for provider in dict.fromkeys(sandbox):
        results += check_sandbox(provider)
        for name in dict.fromkeys(names):
            results += check_task(name, provider, baseline=baseline)
    if as_json:
        print(json.dumps([asdict(c) for c in results], indent=1))
    else:
        table = Table("subject", "check", "status", "detail", show_lines=False)
        colour = {"pass": "green", "fail": "bold red", "skip": "yellow"}
        for c in results:
            table.add_row(escape(c.subject), escape(c.name), f"[{colour[c.status]}]{c.status}[/]", escape(c.detail))
        console.print(table)
        failed = sum(c.failed for c in results)
        console.print(f"{len(results)} checks: {failed} failed, {sum(c.status == 'skip' for c in results)} skipped")
    if any(c.failed for c in results):
        raise typer.Exit(code=1)
