"""`researchgym doctor`: check this machine (sandbox, extras, GPU) and optionally train a baseline."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.markup import escape
from rich.table import Table

from researchgym.cli.common import console, err_console
from researchgym.errors import ResearchGymError


def doctor(
    gpu: bool = typer.Option(
        False,
        "--gpu",
        help="also train the paper's Mountain Car Continuous budget end to end "
        "in its sandbox on the GPU, and print its time and score",
    ),
    train: str | None = typer.Option(
        None, "--train", help="train this RL task's baseline end to end (e.g. rl-mountain-car-continuous-cpu on a CPU)"
    ),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="with --gpu/--train: two PPO updates instead of the budget (checks the pipeline, not the score)",
    ),
    check_tasks: bool = typer.Option(True, "--tasks/--no-tasks", help="list what each task lacks here"),
    as_json: bool = typer.Option(False, "--json", help="print the findings as JSON"),
) -> None:
    """Check this machine: bubblewrap, user namespaces, extras, the GPU on the host and in a sandbox, the tasks."""
    from researchgym.doctor import GPU_TASK, run_checks, train_baseline
    from researchgym.hardware import gpu_devices

    findings = run_checks(tasks=check_tasks)
    essential = [f for f in findings if f.check in ("bubblewrap", "user namespaces") and not f.ok]
    training = None
    problem = ""
    task = GPU_TASK if gpu else train
    if gpu and not gpu_devices():
        problem = (
            "--gpu trains on the GPU, but none is visible here (no /dev/nvidiaN); on a CPU machine check the "
            "pipeline with --train rl-mountain-car-continuous-cpu --quick"
        )
    elif task and not essential:
        try:
            training = train_baseline(task, quick=quick)
            if gpu and not training.on_accelerator:
                problem = f"{task} trained in its sandbox without the GPU ({training.accelerator})"
        except ResearchGymError as exc:
            problem = str(exc)
        except RuntimeError as exc:
            problem = str(exc)
    if as_json:
        print(
            json.dumps(
                {
                    "findings": [asdict(f) for f in findings],
                    "training": training.to_dict() if training else None,
                    "error": problem or None,
                },
                indent=2,
            )
        )
    else:
        table = Table(title="researchgym doctor")
        for column in ("check", "ok", "detail", "what to do"):
            table.add_column(column, overflow="fold")
        for finding in findings:
            table.add_row(
                escape(finding.check),
                "[green]yes[/]" if finding.ok else "[red]no[/]",
                escape(finding.detail),
                escape(finding.hint),
            )
        console.print(table)
        if training is not None:
            baseline = f" (baseline {training.baseline:.6g})" if training.baseline is not None else ""
            console.print(
                escape(
                    f"{training.task}{' (quick)' if training.quick else ''}: trained in "
                    f"{training.seconds:g} s, validated in {training.validate_seconds:g} s; "
                    f"{training.metric} = {training.score:.6g}{baseline}; {training.accelerator}"
                ),
                highlight=False,
            )
    if problem:
        err_console.print(f"error: {problem}", markup=False, highlight=False)
    if essential or problem:
        raise typer.Exit(code=1)
