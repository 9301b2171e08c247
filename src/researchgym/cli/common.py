"""The `researchgym` typer app and what its commands share: the consoles, error lines, the error boundary."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from researchgym.errors import ResearchGymError

# Piped output (CI logs, files) gets a wide console instead of rich's 80 columns.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)


def _print_error(message: str) -> None:
    """One error line on stderr. The message goes in as a Text, which rich never parses: no markup
    (an install hint's `.[tabular]` stays) and no emoji codes."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False)


def _fail(message: str) -> NoReturn:
    _print_error(message)
    raise typer.Exit(code=2)


class _ErrorBoundary(TyperGroup):
    """The command line's one error boundary: a ResearchGymError raised anywhere below a command
    (bad input, a task that cannot run here, a model that does not exist), or an OSError (a path
    that cannot be written), ends it with one line on stderr and exit status 2, never a traceback."""

    def invoke(self, ctx):  # click's Context (typer re-exports its own)
        try:
            return super().invoke(ctx)
        except ResearchGymError as exc:
            _print_error(str(exc))
            raise typer.Exit(code=2) from None
        except OSError as exc:  # a folder that cannot be made, a file where a folder goes, a full disk
            where = f": {exc.filename}" if exc.filename else ""
            _print_error(f"{exc.strerror or exc}{where}")
            raise typer.Exit(code=2) from None


app = typer.Typer(
    cls=_ErrorBoundary,
    help="Gymnasium environments and a benchmark for agents doing ML research.",
    no_args_is_help=True,
    add_completion=False,
)


def _one_line(text: str, width: int = 70) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= width else first[: width - 1] + "…"
