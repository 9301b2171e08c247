"""The `researchgym` command line."""

from __future__ import annotations

import functools
import json
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from researchgym.errors import ResearchGymError

if TYPE_CHECKING:
    from researchgym.runs.config import Method, RunConfig
    from researchgym.runs.episode import StepEvent
    from researchgym.runs.runner import EpisodePlan, Runner
    from researchgym.tasks.spec import TaskSpec

# Piped output (CI logs, files) gets a wide console instead of rich's 80 columns.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, soft_wrap=True)


def _print_error(message: str) -> None:
    """One error line on stderr; the message is text, never rich markup (`.[tabular]` stays)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def _fail(message: str) -> NoReturn:
    _print_error(message)
    raise typer.Exit(code=2)


class _ErrorBoundary(TyperGroup):
    """The command line's one error boundary: a ResearchGymError raised anywhere below a command
    (bad input, a task that cannot run here, a model that does not exist) ends it with one line
    on stderr and exit status 2, never a traceback."""

    def invoke(self, ctx):  # click's Context (typer re-exports its own)
        try:
            return super().invoke(ctx)
        except ResearchGymError as exc:
            _print_error(str(exc))
            raise typer.Exit(code=2) from None


app = typer.Typer(
    cls=_ErrorBoundary,
    help="Gymnasium environments and a benchmark for agents doing ML research.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def tasks(
    path: Path | None = typer.Option(
        None,
        "--path",
        help="list the tasks of this folder instead: an MLGym checkout (its configs/tasks), "
        "a folder of task folders, or a folder of task YAML files",
    ),
) -> None:
    """List the known tasks (or those of a folder, with --path)."""
    from researchgym.tasks.registry import all_tasks, tasks_in

    table = Table(title=f"tasks in {path}" if path else "researchgym tasks")
    columns = ["id", "gym id", "domain", "metric", "direction", "baseline", "needs"]
    if path:
        columns = ["file", "id", "metric", "direction", "baseline", "needs", "status"]
    for column in columns:
        table.add_column(column, no_wrap=column in ("id", "gym id", "needs", "file"))
    errors: list[ResearchGymError] = []
    if path:
        try:
            found = tasks_in(path)
        except ResearchGymError as exc:
            _fail(str(exc))
            return
        specs: list[tuple[Path | None, TaskSpec]] = []
        for found_file, loaded in found:
            if isinstance(loaded, ResearchGymError):
                errors.append(loaded)
            else:
                specs.append((found_file, loaded))
    else:
        specs = [(None, spec) for spec in all_tasks(errors=errors)]
    for file, spec in specs:
        baseline = spec.baseline_score
        missing = set(spec.missing_requirements())
        needs_list = [f"{r} (missing)" if r in missing else r for r in spec.requirements]
        if spec.requires.gpus:
            needs_list.append(f"{spec.requires.gpus} GPU" + ("s" if spec.requires.gpus > 1 else ""))
        needs = ", ".join(needs_list) or "-"
        score = f"{baseline:.6g}" if baseline is not None else "-"
        if file is None:
            table.add_row(spec.id, spec.gym_id, spec.domain, spec.metric.name, spec.metric.direction, score, needs)
        else:
            status = "[yellow]unavailable[/]" if spec.unavailable else "[green]ready[/]"
            table.add_row(file.name, spec.id, spec.metric.name, spec.metric.direction, score, needs, status)
    console.print(table)
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


@app.command()
def prepare(task: str = typer.Argument(..., help="task id, name or path")) -> None:
    """Build the task's datasets into the cache (done automatically on first use)."""
    from researchgym.datasets import prepare_dataset
    from researchgym.tasks.registry import load_task

    try:
        spec = load_task(task)
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    prepared = [ds for ds in spec.datasets if ds.prepare]
    if not prepared:
        console.print(f"{spec.id}: nothing to prepare (its data ships with it)")
        return
    for ds in prepared:
        target = spec.dataset_path(ds)
        with console.status(f"preparing {ds.name} into {target}") as status:

            def show(line: str, name: str = ds.name, status: Any = status) -> None:
                status.update(f"{name}: {line}")

            try:
                digests = prepare_dataset(spec.path(ds.prepare or ""), target, on_line=show)
            except ResearchGymError as exc:
                _fail(str(exc))
                return
        console.print(f"[green]ready[/]: {ds.name} at {target}")
        for name, digest in digests.items():
            console.print(f"  {digest[:16]}  {name}", highlight=False)


@app.command()
def aup(
    best: Path = typer.Option(..., help="CSV of best-attempt scores: Task, baseline, one column per method"),
    last: Path | None = typer.Option(None, help="CSV of best-submission (last) scores, same layout"),
    minimize: list[str] = typer.Option([], help="a task whose metric is minimised (repeat the option)"),
    plot: Path | None = typer.Option(None, help="also draw the performance profiles to this PNG/SVG"),
) -> None:
    """AUP (MLGym's area under the performance profile) for any score table."""
    from researchgym.metrics import compute_aup
    from researchgym.metrics.tables import plot_profiles, read_score_table

    try:
        tables = {"best": read_score_table(best)}
        if last is not None:
            tables["last"] = read_score_table(last)
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    tasks = {task for table in tables.values() for task in table}
    unknown = sorted(set(minimize) - tasks)
    if unknown:
        _fail(f"--minimize names tasks not in the tables: {', '.join(unknown)} (tasks: {', '.join(sorted(tasks))})")
    directions = {task: "minimize" if task in minimize else "maximize" for task in tasks}
    result = compute_aup(tables, directions)
    print("Model,Best AUP,Last AUP")
    for method in sorted(result["best"], key=lambda m: -result["best"][m]):
        last_value = f"{result['last'][method]:.3f}" if "last" in result else ""
        print(f"{method},{result['best'][method]:.3f},{last_value}")
    if plot is not None:
        plot_profiles(tables, directions, plot)
        console.print(f"profiles: {plot}", highlight=False, style="dim")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="folder holding the run's trajectory files"),
    out: Path | None = typer.Option(None, help="where to write (default RUN_DIR/report)"),
) -> None:
    """Tables (scores, AUP, ranks, cost, exit statuses, actions) and plots of a run."""
    from researchgym.analysis.report import build_report

    try:
        folder = build_report(run_dir, out)
    except ResearchGymError as exc:
        _fail(str(exc))
        return
    console.print(f"report: {folder / 'report.md'} and {folder / 'report.html'}", highlight=False)


@app.command()
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


@app.command()
def view(
    run_dir: Path = typer.Argument(
        ..., help="a run folder (results.sqlite and trajectories) or a folder of trajectories"
    ),
    port: int = typer.Option(8765, help="port to serve on (0: any free port)"),
    host: str = typer.Option("127.0.0.1", help="address to bind; anything but loopback exposes your trajectories"),
    export: Path | None = typer.Option(None, help="write a self-contained static copy into this folder instead"),
) -> None:
    """Browse a run in a web browser: scores, AUP, episodes, and every step of a trajectory."""
    from researchgym.viewer import ViewerServer, export_bundle

    if not run_dir.is_dir():
        _fail(f"{run_dir} is not a folder (give a run folder, as `researchgym run` prints it)")
    if export is not None:
        index = export_bundle(run_dir, export)
        console.print(f"viewer bundle: {index} (open it in a browser; no server needed)", highlight=False)
        return
    try:
        server = ViewerServer(run_dir, host=host, port=port)
    except OSError as exc:
        _fail(f"cannot serve on {host}:{port}: {exc.strerror or exc} (try --port 0)")
        return
    console.print(f"researchgym viewer for {run_dir}: {server.url}  (Ctrl-C stops it)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command()
def tools(
    enable: list[str] = typer.Option([], "--enable", help="Also show a tool group's commands: memory, literature."),
) -> None:
    """Show the agent-computer interface commands, as an agent's prompt lists them."""
    from researchgym.tools import available_commands, command_docs, render_command_docs

    console.print(render_command_docs(available_commands(enable)), highlight=False, markup=False)
    extra = sorted({doc.requires for doc in command_docs() if doc.requires and doc.requires not in enable})
    if extra:
        console.print(f"\n(More commands when a run enables them: --enable {' / '.join(extra)})", highlight=False)


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


def _one_line(text: str, width: int = 70) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= width else first[: width - 1] + "…"


def _research_tools(
    memory: bool,
    memory_scope: str,
    memory_k: int,
    literature: bool,
    literature_corpus: Path | None,
    literature_offline: bool,
) -> dict | None:
    """The run's host tools from the command line; None when none is enabled."""
    if memory_scope not in ("episode", "task"):
        _fail(f"--memory-scope must be episode or task, not '{memory_scope}'")
    literature = literature or literature_corpus is not None or literature_offline
    if not (memory or literature):
        return None
    tools: dict = {
        "memory": {"enabled": memory, "scope": memory_scope, "k": memory_k},
        "literature": {"enabled": literature, "offline": literature_offline},
    }
    if literature_corpus is not None:
        tools["literature"]["corpus"] = str(literature_corpus.resolve())
    return tools


SUITES = {
    "mlgym-cpu": [
        "battleOfSexes",
        "prisonersDilemma",
        "blotto",
        "3SATTime",
        "regressionKaggleHousePrice",
        "imageClassificationFMnist",
        "rl-mountain-car-continuous-cpu",
        "rl-breakout-minatar-cpu",
        "rl-meta-maze-cpu",
    ],
    "games": ["battleOfSexes", "prisonersDilemma", "blotto"],
    "rl-cpu": ["rl-mountain-car-continuous-cpu", "rl-breakout-minatar-cpu", "rl-meta-maze-cpu"],
    "rl": ["rl-mountain-car-continuous", "rl-breakout-minatar", "rl-meta-maze"],
    # The 13 MLGym-Bench tasks at the paper's budgets (GPU tasks need a GPU and the hub data).
    "mlgym": [
        "battleOfSexes",
        "prisonersDilemma",
        "blotto",
        "3SATTime",
        "regressionKaggleHousePrice",
        "imageClassificationFMnist",
        "cifar10",
        "coco-captioning",
        "mnli",
        "fineweb-lm",
        "rl-mountain-car-continuous",
        "rl-breakout-minatar",
        "rl-meta-maze",
    ],
    "offline": ["mnist-5k", "shakespeare-char", "imageClassificationFMnist", "regressionKaggleHousePrice"],
}
#: Plural keys a run file may use for the repeatable options.
_RUN_FILE_ALIASES = {"tasks": "task", "agents": "agent", "models": "model"}


def _load_run_file(ctx: typer.Context, value: Path | None) -> Path | None:
    """`run -c FILE`: the file's options become the command's defaults (click's default_map), so
    every flag given on the command line overrides the file. Keys are the options' names (dashes
    or underscores; `tasks`, `agents`, `models` for the repeatable ones); paths are read from the
    current folder, as on the command line."""
    if value is None or ctx.resilient_parsing:
        return value
    import yaml

    try:
        data = yaml.safe_load(value.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read {value}: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{value} must hold a mapping of run options (tasks: [...], seeds: 2, ...)")
    known = {param.name for param in ctx.command.params if param.name and param.name != "config"}
    defaults = {}
    for key, item in data.items():
        name = str(key).replace("-", "_")
        name = _RUN_FILE_ALIASES.get(name, name)
        if name not in known:
            raise typer.BadParameter(
                f"{value}: unknown run option '{key}'; known: {', '.join(sorted(known | set(_RUN_FILE_ALIASES)))}"
            )
        if name in _RUN_FILE_ALIASES.values() and isinstance(item, str):
            item = [item]
        defaults[name] = item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


@app.command()
def run(
    task: list[str] = typer.Argument(None, help="task ids, names, Gymnasium ids or paths (several allowed)"),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        is_eager=True,
        callback=_load_run_file,
        help="YAML file of run options (tasks, agents, models, seeds, temperature, ...); flags override it",
    ),
    agent: list[str] = typer.Option(
        [], help="agent name or module:Object; repeat for several (default: baseline, or react with --model)"
    ),
    model: list[str] = typer.Option(
        [], help="model for the react agent (repeat for several): openai/gpt-4o, local/smollm2, replay:FILE, human"
    ),
    api_base: str | None = typer.Option(None, help="URL of an OpenAI-compatible server (vLLM, llama.cpp, ollama)"),
    cost_limit: float | None = typer.Option(None, help="USD per episode (default from the agent config: 4)"),
    temperature: float | None = typer.Option(None, help="sampling temperature (default 0)"),
    agent_config: Path | None = typer.Option(None, help="YAML file overriding the agent's prompts and settings"),
    sandbox: str = typer.Option("bwrap", help="sandbox provider: bwrap (isolated) or local (no isolation)"),
    out: Path = typer.Option(Path("runs"), help="where the run folder goes (store, trajectories, workspaces)"),
    seed: int | None = typer.Option(None, help="episode seed for a single episode (random if omitted)"),
    seeds: int | None = typer.Option(None, help="run seeds 0..N-1 of every task and method (a matrix run)"),
    suite: str | None = typer.Option(None, help=f"a named set of tasks: {', '.join(SUITES)}"),
    max_steps: int | None = typer.Option(None, help="override the task's step limit"),
    max_episodes: int | None = typer.Option(None, help="episodes at once (default 8 per core)"),
    resume: Path | None = typer.Option(
        None, help="finish the run in this folder: skip finished episodes, rerun the rest"
    ),
    executor: str = typer.Option("local", help="local (threads here) or ray (Ray tasks; extra `ray`)"),
    address: str | None = typer.Option(None, help="Ray cluster: auto or ray://host:port (default: start Ray here)"),
    memory: bool = typer.Option(False, "--memory", help="give agents memory_write/memory_read (extra `memory`)"),
    memory_scope: str = typer.Option(
        "episode", help="episode: a fresh memory each episode; task: kept across a task's episodes (per method)"
    ),
    memory_k: int = typer.Option(2, help="memories memory_read returns by default"),
    literature: bool = typer.Option(
        False, "--literature", help="give agents literature_search and parse_pdf (online: Semantic Scholar, arXiv)"
    ),
    literature_corpus: Path | None = typer.Option(
        None, help="folder of PDFs / JSONL abstracts for literature_search --offline"
    ),
    literature_offline: bool = typer.Option(False, help="literature_search only ever searches the local corpus"),
    eval_seed_file: Path | None = typer.Option(
        None,
        help="reuse a run's evaluation secret (its run folder, or a file with the secret in hex): the same "
        "hidden test seeds, to reproduce its test scores",
    ),
) -> None:
    """Play episodes into a run folder (a SQLite store, trajectories, workspaces) and print their
    scores. One task, one method and no --seeds: a run of one, printed step by step; more: a
    matrix run with a progress bar. Either way the same runner plays them."""
    from researchgym.runs.executors import EXECUTORS

    if executor not in EXECUTORS:
        _fail(f"--executor must be one of {', '.join(EXECUTORS)}, not '{executor}'")
    eval_secret = None
    if eval_seed_file is not None:
        from researchgym.eval_secrets import read_secret

        eval_secret = read_secret(eval_seed_file)
    if resume is not None:
        _play_run(_resumed_config(resume), resume, executor, address, eval_secret, single=False)
        return
    tasks = _expand_task_folders(list(task or []))
    if suite:
        if suite not in SUITES:
            _fail(f"unknown suite '{suite}'; known: {', '.join(SUITES)}")
        tasks += SUITES[suite]
    if not tasks:
        _fail("name at least one task (or --suite NAME, or --resume RUN_DIR)")
    methods = _methods(agent, model)
    single = len(tasks) == 1 and len(methods) == 1 and seeds is None and executor == "local"
    if seeds is not None:
        seed_list = list(range(seeds))
    elif seed is not None:
        seed_list = [seed]
    else:  # a single episode plays a fresh seed; a matrix without --seeds plays seed 0
        seed_list = [secrets.randbelow(2**31)] if single else [0]
    from researchgym.runs.config import RunConfig

    run_config = RunConfig(
        tasks=tasks,
        methods=methods,
        seeds=seed_list,
        sandbox=sandbox,
        max_steps=max_steps,
        cost_limit=cost_limit,
        api_base=api_base,
        max_episodes=max_episodes,
        research_tools=_research_tools(
            memory, memory_scope, memory_k, literature, literature_corpus, literature_offline
        ),
        temperature=temperature,
        agent_config=str(agent_config.resolve()) if agent_config else None,
    )
    run_dir = out / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{run_config.run_id[:6]}"
    _play_run(run_config, run_dir, executor, address, eval_secret, single=single)


#: Agents that play without a model; any other agent named next to --model gets each model.
_MODEL_FREE_AGENTS = ("baseline", "scripted")


def _methods(agents: list[str], models: list[str]) -> list[Method]:
    """Who plays: each model with the react agent (or with each model-taking agent named), and
    each model-free agent named; the baseline when nothing is named."""
    from researchgym.runs.config import Method

    if not models:
        if "react" in agents:
            _fail("the react agent needs a model: pass --model NAME (e.g. openai/gpt-4o, local/smollm2)")
        return [Method(name) for name in dict.fromkeys(agents)] or [Method("baseline")]
    takes_model = [name for name in dict.fromkeys(agents) if name not in _MODEL_FREE_AGENTS] or ["react"]
    free = [Method(name) for name in dict.fromkeys(agents) if name in _MODEL_FREE_AGENTS]
    return [Method(name, m) for name in takes_model for m in dict.fromkeys(models)] + free


def _resumed_config(resume: Path) -> RunConfig:
    from researchgym.runs.config import RunConfig
    from researchgym.runs.layout import RunLayout

    path = RunLayout(resume).run_file
    try:
        text = path.read_text()
    except OSError as exc:
        _fail(f"cannot resume {resume}: it is not a run folder ({exc})")
    return RunConfig.from_json(text, source=str(path))


def _expand_task_folders(names: list[str]) -> list[str]:
    """A folder of task files (an MLGym checkout, a folder of task folders) stands for its tasks
    that can run here; those that cannot are named and left out."""
    from researchgym.tasks.registry import tasks_in
    from researchgym.tasks.spec import TASK_FILE

    expanded = []
    for name in names:
        folder = Path(name).expanduser()
        if not folder.is_dir() or (folder / TASK_FILE).is_file():
            expanded.append(name)
            continue
        try:
            found = tasks_in(folder)
        except ResearchGymError as exc:
            _fail(str(exc))
        for file, loaded in found:
            if isinstance(loaded, ResearchGymError):
                console.print(f"[yellow]left out (broken)[/]: {loaded}", highlight=False)
            elif loaded.unavailable:
                lack = loaded.unavailable[0]
                console.print(f"[yellow]left out[/] {file.name}: {lack.field}: {lack.problem}", highlight=False)
            else:
                expanded.append(str(file))
        if not any(not isinstance(loaded, ResearchGymError) and not loaded.unavailable for _, loaded in found):
            _fail(f"{folder} holds no task that can run here (researchgym tasks --path {folder})")
    return expanded


def _play_run(
    config: RunConfig,
    run_dir: Path,
    executor: str,
    address: str | None,
    eval_secret: bytes | None,
    *,
    single: bool,
) -> None:
    """Play a run (new or resumed) with the runner; a run of one is shown step by step."""
    from researchgym.runs.runner import Runner

    runner_factory = functools.partial(
        Runner, run_dir, config, executor=executor, ray_address=address, eval_secret=eval_secret
    )
    if single:
        _play_one(config, run_dir, runner_factory)
    else:
        _play_many(config, run_dir, runner_factory)


def _play_one(config: RunConfig, run_dir: Path, runner_factory: Callable[..., Runner]) -> None:
    from researchgym.tasks.registry import load_task

    spec = load_task(config.tasks[0])
    method = config.methods[0]
    outcome: dict[str, Any] = {}

    def on_event(kind: str, plan: EpisodePlan, data: dict[str, Any]) -> None:
        if kind != "started":
            outcome.update(kind=kind, data=data)

    def show(plan: EpisodePlan, event: StepEvent) -> None:
        info = event.info
        status = "timeout" if info.get("timed_out") else f"exit {info.get('exit_code')}"
        console.print(
            f"  step {event.step:>3}/{info['max_steps']}  [cyan]{_one_line(event.action)}[/]  "
            f"({status}, {event.seconds:.2f}s)",
            highlight=False,
        )
        for score in info["scores"][-1:]:
            if score["step"] == event.step and "validation" in score:
                console.print(f"           validation {spec.metric.name} = {score['validation']['value']:.6g}")

    runner = runner_factory(on_event=on_event, on_step=show)
    who = f"agent [bold]{method.agent}[/]" + (f" on [bold]{method.model}[/]" if method.model else "")
    console.print(f"[bold]{spec.name}[/] ({spec.id}) with {who} in a [bold]{config.sandbox}[/] sandbox")
    runner.run()
    if outcome.get("kind") != "finished":
        _fail(f"the episode failed: {outcome.get('data', {}).get('error', 'no outcome')} (run folder: {run_dir})")
    result = outcome["data"]
    baseline = spec.baseline_score
    if result["final_score"] is not None:
        console.print(
            f"[bold green]final score[/]: {spec.metric.name} = {result['final_score']:.6g} "
            f"({spec.metric.direction}; baseline {baseline}) — exit status: {result['exit_status']}"
        )
    else:
        console.print(f"[bold red]no score[/] — exit status: {result['exit_status']}")
    if result["model_stats"]:
        stats = result["model_stats"]
        cost = f"${stats['total_cost']:.4f}" + ("" if stats.get("cost_known", True) else " (some calls unpriced)")
        console.print(
            f"model: {stats['api_calls']} calls, {stats['tokens_sent']} tokens sent, "
            f"{stats['tokens_received']} received, {cost}"
        )
    if result["error"]:
        console.print(f"[yellow]ended by[/]: {result['error']}", highlight=False)
    console.print(f"trajectory: {result['trajectory']}", highlight=False)
    console.print(f"run folder: {run_dir}  (report: researchgym report {run_dir})", highlight=False)
    if result["final_score"] is None:
        raise typer.Exit(code=1)


def _play_many(config: RunConfig, run_dir: Path, runner_factory: Callable[..., Runner]) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    total = len(config.tasks) * len(config.methods) * len(config.seeds)
    state = {"running": 0, "failed": 0, "cost": 0.0}
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("episodes", total=total, status="")

        def on_event(kind: str, plan: EpisodePlan, data: dict[str, Any]) -> None:
            if kind == "started":
                state["running"] += 1
            else:
                state["running"] -= 1
                state["failed"] += kind == "failed"
                state["cost"] += float((data.get("model_stats") or {}).get("total_cost", 0.0))
                progress.advance(bar)
            progress.update(bar, status=f"running {state['running']}, failed {state['failed']}, ${state['cost']:.4f}")

        runner = runner_factory(on_event=on_event)
        progress.advance(bar, len(runner.store.episodes("finished")))
        try:
            counts = runner.run()
        finally:
            progress.stop()
    console.print(
        f"run folder: {run_dir}  ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})", highlight=False
    )
    console.print(f"report: researchgym report {run_dir}", highlight=False)
    if counts.get("failed"):
        raise typer.Exit(code=1)


mlbench_app = typer.Typer(
    help="ML-Bench: repository-level ML tasks (LLM setting; judged by arguments, type, execution).",
    no_args_is_help=True,
)
app.add_typer(mlbench_app, name="mlbench")


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
    limit: int | None = typer.Option(None, help="only the first N samples"),
    out: Path = typer.Option(Path("runs/mlbench"), help="run folder (results.sqlite); rerun to resume"),
    sandbox: str = typer.Option("bwrap", help="sandbox provider for the judge"),
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
    from researchgym.models import create_model
    from researchgym.runs.store import Store

    if setting not in SETTINGS:
        _fail(f"--setting must be one of {', '.join(SETTINGS)}, not {setting!r}")
    if k < 1:
        _fail(f"-k must be at least 1 (answers per sample), not {k}")
    try:
        samples = load_samples(data)[:limit]
        pin_file = _mlbench_pin_file(data, pins)
        if judge not in ("strict", "original"):
            _fail(f"--judge must be strict or original, not {judge!r}")
            return
        repos = Repositories(load_pins(pin_file), judge_mode=judge)
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
    limit: int | None = typer.Option(None, help="only the first N samples"),
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
    from researchgym.models import create_model
    from researchgym.runs.store import Store

    try:
        samples = load_samples(data)[:limit]
        pin_file = _mlbench_pin_file(data, pins)
        if judge not in ("strict", "original"):
            _fail(f"--judge must be strict or original, not {judge!r}")
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


import_app = typer.Typer(
    help="Import other frameworks' recorded runs into a researchgym run folder.", no_args_is_help=True
)
app.add_typer(import_app, name="import")


@import_app.command("mlgym")
def import_mlgym_runs(
    source: Path = typer.Argument(..., help="an MLGym checkout, its trajectories/ folder, or one set of runs in it"),
    out: Path = typer.Option(
        ..., "--out", help="run folder to create or add to (re-importing skips episodes already there)"
    ),
    model: list[str] = typer.Option([], help="AUP over only these models (repeat); default: every imported model"),
    aup: bool = typer.Option(True, "--aup/--no-aup", help="print per-model best-attempt and best-submission AUP"),
) -> None:
    """Import MLGym's runs (<model>__<task>__...__run_<N> folders: .traj and results.json) as episodes."""
    from researchgym.importers import import_mlgym, mlgym_aup

    if not source.is_dir():
        _fail(f"{source} is not a folder (give an MLGym checkout or its trajectories/ folder)")
    result = import_mlgym(source, out)
    console.print(
        f"{result.imported} episodes imported, {result.already_there} already there, "
        f"{result.skipped} skipped -> {result.run_dir}",
        highlight=False,
    )
    if aup and (result.imported or result.already_there):
        numbers = mlgym_aup(result.run_dir, model or None)
        table = Table(title=f"AUP ({numbers['episodes']} episodes; MLGym's aggregation)")
        for column in ("method", "best attempt", "best submission"):
            table.add_column(column)
        for method, value in sorted(numbers["aup"]["best attempt"].items(), key=lambda item: -item[1]):
            table.add_row(method, f"{value:.3f}", f"{numbers['aup']['best submission'][method]:.3f}")
        console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(
        f"report: researchgym report {result.run_dir}; steps: researchgym view {result.run_dir}", highlight=False
    )


@app.command()
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


@app.command()
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


@app.command()
def demo(
    sandbox: str = typer.Option("bwrap", help="sandbox provider: bwrap or local"),
    out: Path = typer.Option(Path("runs/demo"), help="where its run folder goes"),
) -> None:
    """Run Battle of Sexes with the scripted baseline agent, offline."""
    from researchgym.runs.config import Method, RunConfig

    config = RunConfig(tasks=["battleOfSexes"], methods=[Method("baseline")], seeds=[0], sandbox=sandbox)
    run_dir = out / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{config.run_id[:6]}"
    _play_run(config, run_dir, "local", None, None, single=True)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
