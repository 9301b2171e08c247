"""The `researchgym` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from researchgym.errors import ResearchGymError

app = typer.Typer(help="Gymnasium environments and a benchmark for agents doing ML research.", no_args_is_help=True,
                  add_completion=False)
# Piped output (CI logs, files) gets a wide console instead of rich's 80 columns.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code=2)


@app.command()
def tasks() -> None:
    """List the known tasks."""
    from researchgym.tasks.registry import all_tasks

    table = Table(title="researchgym tasks")
    for column in ("id", "gym id", "domain", "metric", "direction", "baseline"):
        table.add_column(column, no_wrap=column in ("id", "gym id"))
    errors: list[ResearchGymError] = []
    specs = all_tasks(errors=errors)  # type: ignore[arg-type]
    for spec in specs:
        baseline = spec.baseline_score
        table.add_row(spec.id, spec.gym_id, spec.domain, spec.metric.name, spec.metric.direction,
                      f"{baseline:.6g}" if baseline is not None else "-")
    console.print(table)
    for error in errors:
        console.print(f"[yellow]skipped a broken task:[/] {error}", highlight=False)


@app.command()
def tools() -> None:
    """Show the agent-computer interface commands, as an agent's prompt lists them."""
    from researchgym.tools import render_command_docs

    console.print(render_command_docs(), highlight=False, markup=False)


def _one_line(text: str, width: int = 70) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= width else first[: width - 1] + "…"


def _run(task: str, agent: str, sandbox: str, out: Path, seed: Optional[int], max_steps: Optional[int]) -> None:
    from researchgym.agents import create_agent
    from researchgym.env import ResearchEnv
    from researchgym.runs.episode import StepEvent, run_episode
    from researchgym.tasks.registry import load_task

    try:
        spec = load_task(task)
        agent_obj = create_agent(agent)
        limits = {"max_steps": max_steps} if max_steps else None
        env = ResearchEnv(spec, sandbox=sandbox, limits=limits, trajectory_dir=out)
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    console.print(f"[bold]{spec.name}[/] ({spec.id}) with agent [bold]{agent}[/] in a [bold]{sandbox}[/] sandbox")

    def show(event: StepEvent) -> None:
        info = event.info
        seconds = env.last_step_seconds
        status = "timeout" if info.get("timed_out") else f"exit {info.get('exit_code')}"
        console.print(f"  step {event.step:>3}/{info['max_steps']}  [cyan]{_one_line(event.action)}[/]  "
                      f"({status}, {seconds:.2f}s)", highlight=False)
        for score in info["scores"][-1:]:
            if score["step"] == event.step and "validation" in score:
                console.print(f"           validation {spec.metric.name} = {score['validation']['value']:.6g}")

    try:
        result = run_episode(env, agent_obj, seed=seed, on_step=show)
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    baseline = spec.baseline_score
    if result.final_score is not None:
        console.print(f"[bold green]final score[/]: {spec.metric.name} = {result.final_score:.6g} "
                      f"({spec.metric.direction}; baseline {baseline}) — exit status: {result.exit_status}")
    else:
        console.print(f"[bold red]no score[/] — exit status: {result.exit_status}")
    console.print(f"trajectory: {result.trajectory}")
    if result.final_score is None:
        raise typer.Exit(code=1)


@app.command()
def run(
    task: str = typer.Argument(..., help="task id, name, Gymnasium id, or path to a task folder/YAML"),
    agent: str = typer.Option("baseline", help="agent name or module:Object"),
    sandbox: str = typer.Option("bwrap", help="sandbox provider: bwrap (isolated) or local (no isolation)"),
    out: Path = typer.Option(Path("runs"), help="folder for trajectories"),
    seed: Optional[int] = typer.Option(None, help="episode seed (random if omitted)"),
    max_steps: Optional[int] = typer.Option(None, help="override the task's step limit"),
) -> None:
    """Play one episode of TASK and print the final score and the trajectory path."""
    _run(task, agent, sandbox, out, seed, max_steps)


@app.command()
def demo(
    sandbox: str = typer.Option("bwrap", help="sandbox provider: bwrap or local"),
    out: Path = typer.Option(Path("runs/demo"), help="folder for the trajectory"),
) -> None:
    """Run Battle of Sexes with the scripted baseline agent, offline."""
    _run("battleOfSexes", "baseline", sandbox, out, 0, None)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
