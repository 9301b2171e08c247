"""`researchgym mlbench`: the ML-Bench sub-app (`mlbench llm`, `mlbench agent`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from researchgym.cli.common import _fail, console, err_console
from researchgym.errors import ResearchGymError

mlbench_app = typer.Typer(
    help="ML-Bench: repository-level ML tasks (LLM setting; judged by arguments, type, execution).",
    no_args_is_help=True,
)


def warn_without_mlbench_extra() -> list[str]:
    """ML-Bench's repositories import the mlbench extra's packages (gensim, spaCy, ...): without
    them nearly every answer fails its execution check, which would look like a weak model."""
    import importlib.util

    from rich.markup import escape

    from researchgym.extras import install_hint
    from researchgym.tasks.spec import EXTRA_MODULES

    missing = [name for name in EXTRA_MODULES["mlbench"] if importlib.util.find_spec(name) is None]
    if missing:
        err_console.print(
            f"[bold yellow]warning:[/] the mlbench extra is not installed (missing {', '.join(missing)}): answers "
            f"whose code needs them fail, and pass@k is not the model's. Install it: {escape(install_hint('mlbench'))}",
            highlight=False,
        )
    return missing


def _mlbench_pin_file(data: str, pins: Path | None) -> Path:
    """--pins, else the suite's own repos.yaml, else (samples from the hub or a file) the
    paper's repositories at the commits ML-Bench's preparation script checks out."""
    from researchgym.mlbench.data import suite_dir
    from researchgym.mlbench.repos import PAPER_PINS

    if pins is not None:
        return pins
    if not data.startswith("hf:") and Path(data).suffix not in (".jsonl", ".json", ".parquet"):
        return suite_dir(data) / "repos.yaml"
    console.print(f"[dim]repositories pinned by {PAPER_PINS} (the paper's; --pins to use others)[/dim]")
    return PAPER_PINS


@mlbench_app.command("llm")
def mlbench_llm(
    model: str = typer.Option(..., help="model name: openai/gpt-4o, local/smollm2, module:Object, ..."),
    data: str = typer.Option("offline", help="a suite name, a .jsonl/.parquet file, or hf:<dataset>:<split>"),
    pins: Path | None = typer.Option(None, help="repository pins (YAML); default: the suite's repos.yaml"),
    setting: str = typer.Option("oracle", help="context: code, retrieval, oracle or instruction"),
    k: int = typer.Option(1, "-k", help="answers per sample (pass@k is computed for every k up to this)"),
    temperature: float = typer.Option(1.0, help="sampling temperature (ML-Bench used 1.0 for API models)"),
    budget_chars: int = typer.Option(100_000, help="character budget of the `code` context (400000 for 128k models)"),
    api_base: str | None = typer.Option(None, help="URL of an OpenAI-compatible server"),
    limit: int | None = typer.Option(None, min=1, help="only the first N samples"),
    out: Path = typer.Option(Path("runs/mlbench"), help="run folder (results.sqlite); rerun to resume"),
    sandbox: str = typer.Option("bwrap", help="sandbox provider for the judge"),
    workers: int = typer.Option(
        1, min=1, help="answers judged at once, each in its own sandbox (the model is still asked in order)"
    ),
    judge: str = typer.Option(
        "strict",
        "--judge",
        help="strict (judges what ran) or original (ML-Bench's published rules, for numbers comparable with the paper)",
    ),
) -> None:
    """Ask a model for each sample's command, judge every answer, store it, print pass@k."""
    from researchgym.mlbench.context import SETTINGS
    from researchgym.mlbench.data import load_samples
    from researchgym.mlbench.llm import Repositories, run_llm_setting
    from researchgym.mlbench.repos import load_pins
    from researchgym.models import check_model, create_model
    from researchgym.runs.store import Store

    if setting not in SETTINGS:
        _fail(f"--setting must be one of {', '.join(SETTINGS)}, not {setting!r}")
    if k < 1:
        _fail(f"-k must be at least 1 (answers per sample), not {k}")
    warn_without_mlbench_extra()
    try:
        samples = load_samples(data)[:limit]
        pin_file = _mlbench_pin_file(data, pins)
        if judge not in ("strict", "original"):
            _fail(f"--judge must be strict or original, not {judge!r}")
            return
        repos = Repositories(load_pins(pin_file), judge_mode=judge)
        check_model(model)
        llm = create_model(model, temperature=temperature, api_base=api_base)
        store = Store(out)
        run_id = f"mlbench-{setting}" + ("-original" if judge == "original" else "")
        store.add_run(
            run_id,
            {"data": data, "setting": setting, "k": k, "model": model, "temperature": temperature, "judge": judge},
        )

        def show(row: dict) -> None:
            mark = "[green]pass[/]" if row["passed"] else "[red]fail[/]"
            checks = " ".join(
                f"{name}={'ok' if row[f'{name}_ok'] else 'no'}" for name in ("arguments", "type", "execution")
            )
            console.print(f"{row['sample']} #{row['attempt']}: {mark}  {checks}", highlight=False)

        summary = run_llm_setting(
            samples,
            llm,
            repos,
            store,
            run_id=run_id,
            setting=setting,
            k=k,
            budget_chars=budget_chars,
            sandbox=sandbox,
            on_result=show,
            workers=workers,
        )
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    table = Table(title=f"ML-Bench, {setting} setting, {model}, {judge} judge")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in summary.table().items():
        table.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print(
        "pass@k is the unbiased estimator; mlbench_first_pass@k is ML-Bench's original number "
        "(first passing answer among the first k), shown for comparison.",
        highlight=False,
    )
    console.print(f"results: {store.path}", highlight=False)


@mlbench_app.command("agent")
def mlbench_agent(
    model: str = typer.Option(..., help="model for ML-Agent: openai/gpt-4o, local/smollm2, module:Object, ..."),
    data: str = typer.Option("offline", help="a suite name, a .jsonl/.parquet file, or hf:<dataset>:<split>"),
    pins: Path | None = typer.Option(None, help="repository pins (YAML); default: the suite's repos.yaml"),
    temperature: float = typer.Option(0.0, help="sampling temperature"),
    api_base: str | None = typer.Option(None, help="URL of an OpenAI-compatible server"),
    limit: int | None = typer.Option(None, min=1, help="only the first N samples"),
    out: Path = typer.Option(
        Path("runs/mlbench-agent"), help="run folder (results.sqlite, trajectories/); rerun to resume"
    ),
    sandbox: str = typer.Option("bwrap", help="sandbox provider"),
    judge: str = typer.Option(
        "strict",
        "--judge",
        help="strict (judges what ran) or original (ML-Bench's published rules, for numbers comparable with the paper)",
    ),
) -> None:
    """ML-Agent in the sandboxed repository, one episode per sample; run.sh is judged and stored."""
    from researchgym.mlbench.agent import MLAgent, run_agent_setting
    from researchgym.mlbench.data import load_samples
    from researchgym.mlbench.llm import Repositories
    from researchgym.mlbench.repos import load_pins
    from researchgym.models import check_model, create_model
    from researchgym.runs.store import Store

    warn_without_mlbench_extra()
    try:
        samples = load_samples(data)[:limit]
        pin_file = _mlbench_pin_file(data, pins)
        if judge not in ("strict", "original"):
            _fail(f"--judge must be strict or original, not {judge!r}")
        check_model(model)
        agent = MLAgent(create_model(model, temperature=temperature, api_base=api_base))
        store = Store(out)
        run_id = "mlbench-agent" + ("-original" if judge == "original" else "")
        store.add_run(run_id, {"data": data, "model": model, "agent": agent.name, "judge": judge})
        summary = run_agent_setting(
            samples,
            agent,
            Repositories(load_pins(pin_file), judge_mode=judge),
            store,
            run_id=run_id,
            model_name=model,
            out=out,
            sandbox=sandbox,
            on_result=lambda row: console.print(
                f"{row['sample']}: {'[green]pass[/]' if row['passed'] else '[red]fail[/]'}", highlight=False
            ),
        )
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    console.print(
        f"ML-Agent, {model}, {judge} judge: {summary.pass_at(1):.4f} of {summary.samples} samples pass "
        f"(arguments {summary.checks.get('arguments', 0):.2f}, type {summary.checks.get('type', 0):.2f}, "
        f"execution {summary.checks.get('execution', 0):.2f})",
        highlight=False,
    )
    console.print(f"results: {store.path}", highlight=False)
