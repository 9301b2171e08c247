"""`researchgym run`: play episodes into a run folder (and the run-playing helpers `demo` shares)."""

from __future__ import annotations

import functools
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from researchgym.cli.common import _fail, _one_line, console, err_console
from researchgym.cli.suites import SUITES
from researchgym.errors import ResearchGymError
from researchgym.strict_json import strict_dumps

if TYPE_CHECKING:
    from researchgym.runs.config import Method, RunConfig
    from researchgym.runs.episode import StepEvent
    from researchgym.runs.runner import EpisodePlan, Runner


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
        [],
        help="model for the react agent (repeat for several): openai/gpt-4o, local/smollm2, replay:FILE, "
        "mock (a fixed script, for testing the plumbing), mock:FILE, human",
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
    as_json: bool = typer.Option(
        False, "--json", help="print the run's results as JSON on stdout (progress goes to stderr)"
    ),
) -> None:
    """Play episodes into a run folder (store, trajectories, workspaces) and print their scores.

    One task, one method and no --seeds: a run of one, printed step by step; more: a matrix run
    with a progress bar. Either way the same runner plays them."""
    from researchgym.runs.executors import EXECUTORS

    if executor not in EXECUTORS:
        _fail(f"--executor must be one of {', '.join(EXECUTORS)}, not '{executor}'")
    eval_secret = None
    if eval_seed_file is not None:
        from researchgym.eval_secrets import read_secret

        eval_secret = read_secret(eval_seed_file)
    if resume is not None:
        if task or suite:
            _fail("--resume finishes the run as it was planned: give no task or --suite with it")
        _play_run(_resumed_config(resume), resume, executor, address, eval_secret, single=False, as_json=as_json)
        return
    switches = [name for name in task or [] if name.lower() in _SWITCH_VALUES]
    if switches:
        _fail(
            f"'{switches[0]}' is not a task: --memory, --literature and --literature-offline are switches and "
            "take no value (write --memory, not --memory true)"
        )
    if out.exists() and not out.is_dir():
        _fail(f"--out {out} is a file; give a folder for the run folders (it is created if missing)")
    tasks = _expand_task_folders(list(task or []))
    if suite:
        if suite not in SUITES:
            _fail(f"unknown suite '{suite}'; known: {', '.join(SUITES)}")
        tasks += SUITES[suite]
    if not tasks:
        _fail("name at least one task (or --suite NAME, or --resume RUN_DIR)")
    tasks = list(dict.fromkeys(tasks))  # a task named twice (or also in the suite) plays once
    methods = _methods(agent, model)
    single = len(tasks) == 1 and len(methods) == 1 and seeds is None and executor == "local"
    if seeds is not None:
        seed_list = list(range(seeds))
    elif seed is not None:
        seed_list = [seed]
    else:  # a single episode plays a fresh seed; a matrix without --seeds plays seed 0
        seed_list = [secrets.randbelow(2**31)] if single else [0]
    from researchgym.runs.config import RunConfig, RunConfigError

    try:
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
    except RunConfigError as exc:
        _fail(_as_flags(str(exc)))
    run_dir = out / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{run_config.run_id[:6]}"
    _play_run(run_config, run_dir, executor, address, eval_secret, single=single, as_json=as_json)


def _as_flags(message: str) -> str:
    """A run configuration's complaint in the command line's words: `field 'max_steps'` becomes
    `--max-steps`, an element of the seed list `--seed`."""
    import re

    message = message.removeprefix("run configuration: ")
    message = re.sub(r"field 'seeds\.\d+'", "--seed", message)
    message = re.sub(r"field '([a-z_]+)'", lambda m: "--" + m.group(1).replace("_", "-"), message)
    message = re.sub(
        r"List should have at least (\d+) items? after validation, not \d+", r"should be at least \1", message
    )
    return message.replace("Input should be", "should be")


#: Agents that play without a model; any other agent named next to --model gets each model.
_MODEL_FREE_AGENTS = ("baseline", "scripted")
#: What a value after a switch (--memory true) becomes: a task name, which it never is.
_SWITCH_VALUES = {"true", "false", "yes", "no", "on", "off"}


def _methods(agents: list[str], models: list[str]) -> list[Method]:
    """Who plays: each model with the react agent (or with each model-taking agent named), and
    each model-free agent named; the baseline when nothing is named."""
    from researchgym.runs.config import Method

    if not models:
        if "react" in agents:
            _fail("the react agent needs a model: pass --model NAME (e.g. openai/gpt-4o, local/smollm2)")
        return [Method(name) for name in dict.fromkeys(agents)] or [Method("baseline")]
    if agents and all(name in _MODEL_FREE_AGENTS for name in agents):
        _fail(
            f"--agent {' --agent '.join(agents)} plays without a model, so --model has no one to drive: "
            "add --agent react (or another model-driven agent), or drop --model"
        )
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
    as_json: bool = False,
) -> None:
    """Play a run (new or resumed) with the runner; a run of one is shown step by step.

    Ctrl-C stops it (runner.py): the first stops what runs and names the resume command (exit
    status 130), a second leaves at once. With `as_json` the results go to stdout as JSON and
    everything else to stderr."""
    from researchgym.runs.runner import Runner, RunStopped

    out = err_console if as_json else console

    def on_interrupt(waiting: int) -> None:
        wait = f"; waiting for {waiting} episode(s) to stop" if waiting else ""
        out.print(f"[yellow]stopping[/]: no new episode starts{wait} (Ctrl-C again to quit now)", highlight=False)

    runner_factory = functools.partial(
        Runner,
        run_dir,
        config,
        executor=executor,
        ray_address=address,
        eval_secret=eval_secret,
        on_interrupt=on_interrupt,
    )
    try:
        if single:
            _play_one(config, run_dir, runner_factory, out, as_json)
        else:
            _play_many(config, run_dir, runner_factory, out, as_json)
    except RunStopped as exc:
        err_console.print(f"[yellow]stopped[/]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(code=130) from None
    except KeyboardInterrupt:
        # The second Ctrl-C: episode threads may still be in a model call; do not wait for them.
        err_console.print(f"[yellow]quit[/]; finish the run with: researchgym run --resume {run_dir}", highlight=False)
        err_console.file.flush()
        os._exit(130)


def _play_one(
    config: RunConfig, run_dir: Path, runner_factory: Callable[..., Runner], out: Console, as_json: bool
) -> None:
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
        out.print(
            f"  step {event.step:>3}/{info['max_steps']}  [cyan]{escape(_one_line(event.action))}[/]  "
            f"({status}, {event.seconds:.2f}s)",
            highlight=False,
        )
        for score in info["scores"][-1:]:
            if score["step"] == event.step and "validation" in score:
                out.print(f"           validation {spec.metric.name} = {score['validation']['value']:.6g}")

    indicator = _LiveIndicator(out, enabled=method.model != "human")  # the human types at this terminal
    runner = runner_factory(on_event=on_event, on_step=show, on_phase=indicator.phase)
    who = f"agent [bold]{escape(method.agent)}[/]" + (f" on [bold]{escape(method.model)}[/]" if method.model else "")
    out.print(f"[bold]{escape(spec.name)}[/] ({spec.id}) with {who} in a [bold]{config.sandbox}[/] sandbox")
    with indicator:
        runner.run()
    if as_json:
        print(strict_dumps(_results(runner, run_dir), default=str))
    if outcome.get("kind") != "finished":
        _fail(f"the episode failed: {outcome.get('data', {}).get('error', 'no outcome')} (run folder: {run_dir})")
    result = outcome["data"]
    baseline = spec.baseline_score
    if result["final_score"] is not None:
        out.print(
            f"[bold green]final score[/]: {spec.metric.name} = {result['final_score']:.6g} "
            f"({spec.metric.direction}; baseline {baseline}) — exit status: {escape(str(result['exit_status']))}"
        )
    else:
        out.print(f"[bold red]no score[/] — exit status: {escape(str(result['exit_status']))}")
    if result["model_stats"]:
        stats = result["model_stats"]
        cost = f"${stats['total_cost']:.4f}" + ("" if stats.get("cost_known", True) else " (some calls unpriced)")
        out.print(
            f"model: {stats['api_calls']} calls, {stats['tokens_sent']} tokens sent, "
            f"{stats['tokens_received']} received, {cost}"
        )
    if result["error"]:
        out.print(f"[yellow]ended by[/]: {escape(result['error'])}", highlight=False)
    out.print(f"trajectory: {result['trajectory']}", highlight=False)
    out.print(f"run folder: {run_dir}  (report: researchgym report {run_dir})", highlight=False)
    silent = _never_answered(config, {method.label: [result]})
    if silent:
        _print_silent_models(silent)
        raise typer.Exit(code=1)
    if result["final_score"] is None:
        raise typer.Exit(code=1)


class _LiveIndicator:
    """One live line under a single episode's steps while it waits: the model thinking, or the
    command running, with the seconds it has taken so far (a terminal only; logs get none)."""

    def __init__(self, out: Console, *, enabled: bool) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.enabled = enabled and out.is_terminal
        self._progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=out, transient=True
        )
        self._task = self._progress.add_task("starting the sandbox", total=None)

    def phase(self, plan: EpisodePlan, what: str, detail: str) -> None:
        if not self.enabled:
            return
        text = "the agent is thinking" if what == "thinking" else f"running [cyan]{escape(_one_line(detail, 60))}[/]"
        self._progress.reset(self._task, description=text)

    def __enter__(self) -> _LiveIndicator:
        if self.enabled:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._progress.stop()


def _play_many(
    config: RunConfig, run_dir: Path, runner_factory: Callable[..., Runner], out: Console, as_json: bool
) -> None:
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
    played: dict[str, list[dict[str, Any]]] = {}  # this attempt's results, by method
    handlers: dict[str, Callable[[str, EpisodePlan, dict[str, Any]], None]] = {}
    # Built before the progress bar: a run it refuses (an unknown task) shows no bar.
    runner = runner_factory(on_event=lambda kind, plan, data: handlers["event"](kind, plan, data))
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=out,
    ) as progress:
        bar = progress.add_task("episodes", total=total, status="")

        def on_event(kind: str, plan: EpisodePlan, data: dict[str, Any]) -> None:
            if kind == "started":
                state["running"] += 1
            else:
                state["running"] -= 1
                state["failed"] += kind == "failed"
                state["cost"] += float((data.get("model_stats") or {}).get("total_cost", 0.0))
                if kind == "finished":
                    played.setdefault(plan.method.label, []).append(data)
                if kind != "interrupted":
                    progress.advance(bar)
            progress.update(bar, status=f"running {state['running']}, failed {state['failed']}, ${state['cost']:.4f}")

        handlers["event"] = on_event
        progress.advance(bar, len(runner.store.episodes("finished")))
        try:
            counts = runner.run()
        finally:
            progress.stop()
    _print_summary(runner, out)
    out.print(f"run folder: {run_dir}  ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})", highlight=False)
    out.print(f"report: researchgym report {run_dir}", highlight=False)
    if as_json:
        print(strict_dumps(_results(runner, run_dir), default=str))
    silent = _never_answered(config, played)
    if silent:
        _print_silent_models(silent)
    if counts.get("failed") or silent:
        raise typer.Exit(code=1)


#: Rows of the end-of-run table; a bigger run is summed up by `researchgym report`.
_SUMMARY_ROWS = 40


def _print_summary(runner: Runner, out: Console) -> None:
    """One line per episode: task, method, seed, and its score or what stopped it."""
    rows = runner.store.episodes()
    table = Table(title="episodes", title_justify="left")
    for column in ("task", "method", "seed", "status", "score / error"):
        table.add_column(column, overflow="fold")
    for row in rows[:_SUMMARY_ROWS]:
        method = row["agent"] + (f" + {row['model']}" if row["model"] else "")
        if row["status"] == "finished" and row["final_score"] is not None:
            outcome = f"{row['final_score']:.6g} ({row['exit_status']})"
        elif row["status"] == "finished":
            outcome = f"no score ({row['exit_status']})"
        else:
            outcome = _one_line(row["error"] or "", 90)
        table.add_row(row["task"], method, str(row["seed"]), row["status"], escape(outcome))
    out.print(table)
    if len(rows) > _SUMMARY_ROWS:
        out.print(f"... and {len(rows) - _SUMMARY_ROWS} more (researchgym report {runner.run_dir})")


def _results(runner: Runner, run_dir: Path) -> dict[str, Any]:
    """The run's results for `--json`: its folder, counts and every episode's outcome."""
    fields = ("task", "agent", "model", "seed", "status", "exit_status", "final_score", "steps", "cost")
    episodes = [
        {**{key: row[key] for key in fields}, "error": row["error"], "trajectory": row["trajectory"]}
        for row in runner.store.episodes()
    ]
    return {"run_dir": str(run_dir), "counts": runner.counts(), "episodes": episodes}


def _never_answered(config: RunConfig, played: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """Models with which no episode of this attempt got a single reply (an unknown name,
    missing credentials, a server that is not there): the starter code was scored, not the
    model. Returns {model: what its first episode ended with}."""
    silent = {}
    for method in config.methods:
        results = played.get(method.label) or []
        if method.model is None or not results:
            continue
        if all(not (result.get("model_stats") or {}).get("api_calls") for result in results):
            first = results[0]
            silent[method.model] = str(first.get("error") or first.get("exit_status"))
    return silent


def _print_silent_models(silent: dict[str, str]) -> None:
    for model, why in silent.items():
        err_console.print(
            f"[bold red]error:[/] the model {escape(model)} never answered; its episodes scored the starter "
            f"code. {escape(_one_line(why, 300))}",
            highlight=False,
        )
