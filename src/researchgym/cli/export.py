"""`researchgym export`: a run's episodes as a Hugging Face dataset (SFT or RL)."""

from __future__ import annotations

from pathlib import Path

import typer

from researchgym.cli.common import _fail, console
from researchgym.errors import ResearchGymError


def export(
    run_dir: Path = typer.Argument(..., help="a run folder made by `researchgym run`"),
    format: str = typer.Option(
        "sft", "--format", help="sft (one chat per episode) or rl (prompt, completion, reward per step)"
    ),
    out: Path = typer.Option(Path("export"), help="folder for <format>.parquet"),
    task: list[str] = typer.Option([], help="only these tasks (repeat)"),
    model: list[str] = typer.Option([], help="only these models or agents (repeat)"),
    exit_status: list[str] = typer.Option([], help="only episodes that ended so (repeat), e.g. submitted"),
    min_score: float | None = typer.Option(None, help="only episodes whose normalised final score is at least this"),
) -> None:
    """Write a run's episodes as a Hugging Face dataset (parquet) for fine-tuning or RL."""
    from researchgym.training.export import export_run

    try:
        path, rows = export_run(
            run_dir,
            out,
            format,
            tasks=task or None,
            models=model or None,
            exit_statuses=exit_status or None,
            min_score=min_score,
        )
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    console.print(f"{rows} rows -> {path}  (datasets.load_dataset('parquet', data_files='{path}'))", highlight=False)
    if rows == 0:
        _fail(
            f"{run_dir} gave no rows: no finished episode passed the filters (--task, --model, --exit-status, "
            "--min-score), or those that did hold no model replies (a baseline or scripted agent has none: "
            "export runs of --model)"
        )
