"""`researchgym tools`: the agent-computer interface commands, as an agent's prompt lists them."""

from __future__ import annotations

import typer

from researchgym.cli.common import console


def tools(
    enable: list[str] = typer.Option([], "--enable", help="Also show a tool group's commands: memory, literature."),
) -> None:
    """Show the agent-computer interface commands, as an agent's prompt lists them."""
    from researchgym.tools import available_commands, command_docs, render_command_docs

    console.print(render_command_docs(available_commands(enable)), highlight=False, markup=False)
    extra = sorted({doc.requires for doc in command_docs() if doc.requires and doc.requires not in enable})
    if extra:
        console.print(f"\n(More commands when a run enables them: --enable {' / '.join(extra)})", highlight=False)
