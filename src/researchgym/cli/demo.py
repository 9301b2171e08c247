"""`researchgym demo`: Battle of Sexes with the scripted baseline agent, offline."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from researchgym.cli.run import _play_run


def demo(
    sandbox: str = typer.Option("bwrap", help="sandbox provider: bwrap or local"),
    out: Path = typer.Option(Path("runs/demo"), help="where its run folder goes"),
) -> None:
    """Run Battle of Sexes with the scripted baseline agent, offline."""
    from researchgym.runs.config import Method, RunConfig

    config = RunConfig(tasks=["battleOfSexes"], methods=[Method("baseline")], seeds=[0], sandbox=sandbox)
    run_dir = out / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{config.run_id[:6]}"
    _play_run(config, run_dir, "local", None, None, single=True)
