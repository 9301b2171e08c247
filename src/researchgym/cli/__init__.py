"""The `researchgym` command line: one module per command or sub-app; this one registers them on
`app` in the order `researchgym --help` lists them (explicitly, so import sorting cannot reorder them)."""

import os
import sys

import typer

import researchgym
from researchgym.cli import (
    aup,
    check,
    demo,
    doctor,
    export,
    importers,
    mlbench,
    prepare,
    report,
    run,
    tasks,
    tools,
    view,
)
from researchgym.cli.common import _ErrorBoundary, app
from researchgym.cli.mlbench import _mlbench_pin_file
from researchgym.cli.suites import SUITES


def _print_version(value: bool) -> None:
    if value:
        print(f"researchgym {researchgym.__version__}")
        raise typer.Exit()


# `-h` as well as `--help`; click hands help_option_names down to every subcommand's context.
@app.callback(context_settings={"help_option_names": ["-h", "--help"]})
def _top_level(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="print the version and exit"
    ),
) -> None:
    # `--model mymodel:MyModel`, `--agent`, `--sandbox`: a module in the current folder is found,
    # as `python -m` finds it (a console script's path starts at its own folder).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


app.command()(tasks.tasks)
app.command()(prepare.prepare)
app.command()(aup.aup)
app.command()(report.report)
app.command()(export.export)
app.command()(view.view)
app.command()(tools.tools)
app.command()(run.run)
app.add_typer(mlbench.mlbench_app, name="mlbench")
app.add_typer(importers.import_app, name="import")
app.command()(doctor.doctor)
app.command()(check.check)
app.command()(demo.demo)


def main() -> None:  # pragma: no cover - console entry
    app()


__all__ = ["SUITES", "_ErrorBoundary", "_mlbench_pin_file", "app", "main"]
