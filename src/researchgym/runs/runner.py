"""Running a matrix of episodes (tasks x methods x seeds) concurrently, into one run folder
(its layout: layout.py).

Episodes run on an executor (threads here, or Ray: executors.py) but this process alone keeps
the books: it keeps at most min(episodes cap, sandboxes cap) in flight, marks each running in the
store before submitting it and records its outcome in one transaction when it comes back, so a
crash loses only the episodes in flight; `resume` reruns exactly those (their partial files are
removed first). Model calls in flight are also capped per provider (in this process). When the
store cannot be written (a full disk), nothing more is submitted and the run raises
RunInterrupted once the episodes in flight are back, on either executor. Ctrl-C stops a run
gracefully: nothing more starts, the commands running now are interrupted, each episode in
flight stops before its next step (unscored: resume plays it again) and RunStopped names the
resume command; a second Ctrl-C leaves at once. Sandboxes die with the runner (bubblewrap's
--die-with-parent), so a killed runner leaves none behind.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from researchgym.errors import ResearchGymError
from researchgym.runs.config import Method, RunConfig
from researchgym.runs.executors import EXECUTORS, make_executor
from researchgym.runs.layout import RUN_FILE, RunLayout, safe_name
from researchgym.runs.store import NonFiniteScoreError, Store, episode_id

if TYPE_CHECKING:
    from researchgym.runs.episode import StepEvent

__all__ = [
    "RUN_FILE",
    "EpisodePlan",
    "Method",
    "RunConfig",
    "RunInterrupted",
    "RunStopped",
    "Runner",
    "StopSignal",
    "safe_name",
]


@dataclass(frozen=True)
class EpisodePlan:
    task: str
    method: Method
    seed: int

    @property
    def id(self) -> str:
        return episode_id(self.task, self.method.agent, self.method.model, self.seed)


def default_caps() -> tuple[int, int]:
    """(episodes, sandboxes): model-bound episodes mostly wait, so several per core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 8 * cores, 8 * cores


class _LimitedModel:
    """Wraps a model so that at most N calls per provider are in flight at once."""

    def __init__(self, model: Any, gate: threading.Semaphore) -> None:
        self._model, self._gate = model, gate
        self.name = model.name
        self.max_output_tokens = model.max_output_tokens

    def query(self, messages):
        with self._gate:
            return self._model.query(messages)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class RunInterrupted(ResearchGymError):
    """The run stopped before its end (its folder could not be written); resume finishes it."""


class RunStopped(RunInterrupted):
    """The run was stopped by Ctrl-C; resume finishes it."""


class StopSignal:
    """A run's stop request, seen by every episode it plays in this process: each stops before
    its next step, and the command each is running is interrupted."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._envs: set[Any] = set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()
        with self._lock:
            envs = list(self._envs)
        for env in envs:
            env.interrupt()

    def watch(self, env: Any) -> None:
        """Interrupt `env` (a ResearchEnv) when the run stops; at once if it already has."""
        with self._lock:
            self._envs.add(env)
        if self.is_set():
            env.interrupt()

    def forget(self, env: Any) -> None:
        with self._lock:
            self._envs.discard(env)


class Runner:
    def __init__(
        self,
        run_dir: str | Path,
        config: RunConfig,
        on_event: Callable[[str, EpisodePlan, dict[str, Any]], None] | None = None,
        executor: str = "local",
        ray_address: str | None = None,
        eval_secret: bytes | None = None,
        on_step: Callable[[EpisodePlan, StepEvent], None] | None = None,
        on_interrupt: Callable[[int], None] | None = None,
        on_phase: Callable[[EpisodePlan, str, str], None] | None = None,
    ) -> None:
        """`on_event` hears of each episode started, finished or failed (in this thread);
        `on_step` of every step, from the thread that plays it (not on Ray); `on_interrupt` of
        the first Ctrl-C, with the number of episodes it waits for to stop; `on_phase` of what
        each episode waits on (the agent thinking, a command running), like `on_step`."""
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
        self.executor, self.ray_address = executor, ray_address
        self.config = config
        self.preflight()
        if config.research_tools:  # after the names: checking memory loads its embedder
            from researchgym.tools.services import ResearchToolsConfig

            try:
                ResearchToolsConfig.model_validate(config.research_tools).check()
            except ValueError as exc:
                raise ResearchGymError(f"research_tools: {exc}") from None
        self.run_dir = Path(run_dir)
        self.layout = RunLayout(self.run_dir)
        self.on_event = on_event
        self.on_step = on_step
        self.on_interrupt = on_interrupt
        self.on_phase = on_phase
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.layout.run_file.write_text(config.to_json())
        self.store = Store(self.run_dir)
        self.store.add_run(config.run_id, json.loads(config.to_json()))
        #: Behind every episode's test seed; kept in the store, the same on resume (eval_secrets.py).
        self.eval_secret = self.store.eval_secret(eval_secret)
        episodes, sandboxes = default_caps()
        #: Episodes in flight at once: each holds its sandboxes for its whole length.
        self.max_in_flight = max(1, min(config.max_episodes or episodes, config.max_sandboxes or sandboxes))
        self._providers: dict[str, threading.Semaphore] = {}
        self._providers_lock = threading.Lock()
        #: Set by the first Ctrl-C (or by `stop()` from another thread).
        self.stop_signal = StopSignal()

    def stop(self) -> None:
        """Stop the run as Ctrl-C does: start nothing more, stop the episodes in flight."""
        self.stop_signal.set()

    @classmethod
    def resume(cls, run_dir: str | Path, **kwargs: Any) -> Runner:
        path = RunLayout(Path(run_dir)).run_file
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir} is not a run folder (no {RUN_FILE})")
        return cls(run_dir, RunConfig.from_json(path.read_text(), source=str(path)), **kwargs)

    def plans(self) -> list[EpisodePlan]:
        return [EpisodePlan(t, m, s) for t in self.config.tasks for m in self.config.methods for s in self.config.seeds]

    def run(self) -> dict[str, int]:
        """Run every planned episode not finished yet; returns counts by status."""
        queue = deque(self.pending())
        if not queue:
            return self.counts()
        executor = make_executor(self.executor, workers=min(self.max_in_flight, len(queue)), address=self.ray_address)
        in_process: dict[str, Any] = (
            {"gate": self._gate, "on_step": self.on_step, "on_phase": self.on_phase, "stop": self.stop_signal}
            if executor.in_process
            else {}
        )
        in_flight: dict[Future[Any], EpisodePlan] = {}
        unsettled: dict[str, EpisodePlan] = {}  # started, outcome not recorded yet
        store_failure: str | None = None
        leave_now = False
        try:
            while queue or in_flight:
                while (
                    queue
                    and store_failure is None
                    and not self.stop_signal.is_set()
                    and len(in_flight) < self.max_in_flight
                ):
                    plan = queue.popleft()
                    try:
                        self.store.mark_running(plan.id)
                    except (sqlite3.OperationalError, OSError) as exc:
                        store_failure = f"{type(exc).__name__}: {exc}"
                        break
                    self.emit("started", plan, {})
                    unsettled[plan.id] = plan
                    future = executor.submit(
                        play_episode, plan, self.config, self.run_dir, eval_secret=self.eval_secret, **in_process
                    )
                    in_flight[future] = plan
                if not in_flight:
                    break
                try:
                    done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    if self.stop_signal.is_set():
                        raise  # the second: leave at once
                    self._first_interrupt(len(in_flight), executor.in_process)
                    if not executor.in_process:  # Ray: its workers go with it; nothing to wait for
                        break
                    continue
                for future in done:
                    plan = in_flight.pop(future)
                    try:
                        self.settle(plan, _outcome(future, executor.in_process))
                        unsettled.pop(plan.id, None)
                    except (sqlite3.OperationalError, OSError) as exc:
                        store_failure = store_failure or f"{type(exc).__name__}: {exc}"
        except KeyboardInterrupt:
            if self.stop_signal.is_set() or not unsettled:  # the second Ctrl-C: leave at once
                leave_now = True
                raise
            self._first_interrupt(len(unsettled), executor.in_process)  # inline: the episode itself stopped
        finally:
            if not leave_now:
                executor.shutdown()
        if self.stop_signal.is_set():
            for plan in unsettled.values():
                self.store.mark_interrupted(plan.id)
            counts = self.counts()
            raise RunStopped(
                f"{counts.get('finished', 0)} episode(s) finished, {counts.get('interrupted', 0)} stopped "
                f"before their end and {counts.get('planned', 0)} not started; finish the run with: "
                f"researchgym run --resume {self.run_dir}"
            )
        if store_failure is not None:
            raise RunInterrupted(
                f"the run folder {self.run_dir} could not be written ({store_failure}); the run stopped "
                f"with {self.counts().get('finished', 0)} episode(s) recorded. Free space (or fix the disk) and "
                f"finish it with: researchgym run --resume {self.run_dir}"
            )
        return self.counts()

    def _first_interrupt(self, in_flight: int, waits: bool) -> None:
        """The first Ctrl-C: stop the run and say what happens next."""
        self.stop_signal.set()
        if self.on_interrupt is not None:
            self.on_interrupt(in_flight if waits else 0)

    def preflight(self) -> None:
        """Refuse the run before any episode starts when a task, agent or sandbox name is
        unknown, a task file is broken or the agent config cannot be read: one clear error
        instead of every episode failing the same way."""
        from researchgym.agents import AGENTS
        from researchgym.sandbox import SANDBOXES
        from researchgym.tasks.registry import load_task

        for task in self.config.tasks:
            load_task(task)
        SANDBOXES.get(self.config.sandbox)
        for method in self.config.methods:
            AGENTS.get(method.agent)
        if any(method.model for method in self.config.methods):
            from researchgym.models import check_model

            agent_config_of(self.config)
            for model in dict.fromkeys(method.model for method in self.config.methods if method.model):
                check_model(model)

    def pending(self) -> list[EpisodePlan]:
        """Plan every episode in the store and return those not finished yet."""
        plans = self.plans()
        self.store.plan(self.config.run_id, [(p.task, p.method.agent, p.method.model, p.seed) for p in plans])
        finished = {row["id"] for row in self.store.episodes("finished")}
        return [p for p in plans if p.id not in finished]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.store.episodes():
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        return counts

    def _gate(self, model_name: str) -> threading.Semaphore:
        provider = model_name.split("/", 1)[0] if "/" in model_name else model_name
        with self._providers_lock:
            return self._providers.setdefault(provider, threading.Semaphore(self.config.max_calls_per_provider))

    def emit(self, kind: str, plan: EpisodePlan, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(kind, plan, data)

    def settle(self, plan: EpisodePlan, outcome: dict[str, Any]) -> None:
        """Record what an episode came to (played here or by a remote worker)."""
        if outcome["status"] == "interrupted":
            self.store.mark_interrupted(plan.id)
            self.emit("interrupted", plan, outcome)
        elif outcome["status"] == "failed":
            self.store.mark_failed(plan.id, outcome["error"])
            self.emit("failed", plan, outcome)
        else:
            try:
                self.store.record(plan.id, outcome["result"], outcome["metric"])
            except NonFiniteScoreError as exc:  # kept out of the store: the episode failed, the run goes on
                self.store.mark_failed(plan.id, str(exc))
                self.emit("failed", plan, {"status": "failed", "error": str(exc)})
                return
            self.emit("finished", plan, outcome["result"])


def _outcome(future: Future[Any], in_process: bool) -> dict[str, Any]:
    """An episode's outcome; play_episode never raises, so an exception here means its worker died."""
    try:
        return future.result()
    except Exception as exc:
        where = "episode thread" if in_process else "ray worker"
        return {"status": "failed", "error": f"{where} failed: {type(exc).__name__}: {exc}"}


def agent_config_of(config: RunConfig) -> Any:
    """The agent configuration every model-driven episode of the run gets: the defaults, the
    run's agent config file, then --cost-limit and --temperature on top."""
    from researchgym.agents.config import load_agent_config

    overrides: dict[str, Any] = {}
    if config.cost_limit is not None:
        overrides["limits"] = {"cost_usd": config.cost_limit}
    if config.temperature is not None:
        overrides["model"] = {"temperature": config.temperature}
    return load_agent_config(config.agent_config, **overrides)


def model_kwargs(settings: Any, api_base: str | None) -> dict[str, Any]:
    """What a model is offered from the agent config's model settings and --api-base;
    create_model hands each backend only the settings it takes."""
    kwargs: dict[str, Any] = {
        "temperature": settings.temperature,
        "max_output_tokens": settings.max_output_tokens,
        "top_p": settings.top_p,
    }
    if api_base:
        kwargs["api_base"] = api_base
    return kwargs


def make_agent(method: Method, config: RunConfig, gate: Callable[[str], threading.Semaphore] | None = None) -> Any:
    """The one factory of agents (the command line's single episode uses it too)."""
    from researchgym.agents import create_agent

    if method.model is None:
        return create_agent(method.agent)
    from researchgym.models import create_model

    agent_config = agent_config_of(config)
    model = create_model(method.model, **model_kwargs(agent_config.model, config.api_base))
    if gate is not None:
        model = _LimitedModel(model, gate(method.model))
    return create_agent(method.agent, model=model, config=agent_config)


def episode_research_tools(config: RunConfig, plan: EpisodePlan, run_dir: Path) -> dict[str, Any] | None:
    """The run's research tools for one episode: a task-scoped memory lives in the run folder,
    one per method, so one model's findings never reach another's episodes."""
    tools = json.loads(json.dumps(config.research_tools)) if config.research_tools else None
    memory = (tools or {}).get("memory") or {}
    if memory.get("enabled") and memory.get("scope") == "task" and not memory.get("directory"):
        memory["directory"] = str(RunLayout(Path(run_dir).resolve()).memory(plan.method.label))
    return tools


def play_episode(
    plan: EpisodePlan,
    config: RunConfig,
    run_dir: Path,
    gate: Callable[[str], threading.Semaphore] | None = None,
    eval_secret: bytes | None = None,
    on_step: Callable[[EpisodePlan, StepEvent], None] | None = None,
    stop: StopSignal | None = None,
    on_phase: Callable[[EpisodePlan, str, str], None] | None = None,
) -> dict[str, Any]:
    """Play one planned episode; never raises (but for Ctrl-C). Runs wherever it is called
    (this thread, a thread of the pool, a Ray worker). An episode the run's `stop` ended
    comes back `interrupted`."""
    from researchgym.runs.episode import EpisodeStopped, run_episode
    from researchgym.wrappers import make_env

    layout = RunLayout(Path(run_dir))
    trajectories, workspaces = layout.trajectories(plan.id), layout.workspace(plan.id)
    for leftover in (trajectories, workspaces):  # from an interrupted attempt
        shutil.rmtree(leftover, ignore_errors=True)
    started = time.perf_counter()
    try:
        limits = {"max_steps": config.max_steps} if config.max_steps else None
        env = make_env(
            plan.task,
            sandbox=config.sandbox,
            limits=limits,
            trajectory_dir=trajectories,
            workspace_dir=workspaces,
            research_tools=episode_research_tools(config, plan, run_dir),
            eval_secret=eval_secret,
        )
        agent = make_agent(plan.method, config, gate)
        step_hook = functools.partial(on_step, plan) if on_step is not None else None
        phase_hook = functools.partial(on_phase, plan) if on_phase is not None else None
        if stop is not None:
            stop.watch(env.unwrapped)
        try:
            should_stop = stop.is_set if stop is not None else None
            result = run_episode(
                env, agent, seed=plan.seed, on_step=step_hook, should_stop=should_stop, on_phase=phase_hook
            ).to_dict()
        finally:
            if stop is not None:
                stop.forget(env.unwrapped)
    except EpisodeStopped as exc:
        return {"status": "interrupted", "error": str(exc)}
    except Exception as exc:  # a broken task or agent fails this episode, not the run
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    result["duration_s"] = time.perf_counter() - started
    return {"status": "finished", "result": result, "metric": env.task.metric.name}
