"""Playing one episode: an agent against an environment, until it ends, whatever happens."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from researchgym.agents.base import Agent, as_action, record_of
from researchgym.env import ResearchEnv
from researchgym.errors import ResearchGymError
from researchgym.training.rewards import final_reward, normalise
from researchgym.wrappers import EpisodeWrapper


class EpisodeStopped(ResearchGymError):
    """The run was stopped (Ctrl-C) before the episode ended: it has no result, and a resumed
    run plays it again from the start."""


@dataclass
class StepEvent:
    step: int
    action: str
    observation: str
    reward: float
    info: dict[str, Any]
    #: Wall time of the step (the command and any scoring it asked for).
    seconds: float = 0.0


@dataclass
class EpisodeResult:
    task: str
    agent: str
    seed: int
    exit_status: str | None
    final_score: float | None
    reward: float
    steps: int
    duration_s: float
    trajectory: str | None
    scores: list[dict[str, Any]] = field(default_factory=list)
    model_stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_episode(
    env: ResearchEnv | EpisodeWrapper,
    agent: Agent,
    *,
    seed: int | None = None,
    on_step: Callable[[StepEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_phase: Callable[[str, str], None] | None = None,
) -> EpisodeResult:
    """Play until the episode terminates or is truncated. An agent crash auto-submits.

    `env` is a bare `ResearchEnv` or a stack of researchgym's wrappers (make_env). When
    `should_stop()` turns true (the run is stopping), the episode stops before its next step,
    is closed unscored and EpisodeStopped is raised. `on_phase(phase, detail)` hears what the
    episode waits on: ("thinking", "") before the agent's move, ("running", command) before the
    command (a live indicator)."""
    stopping = should_stop or (lambda: False)
    phase = on_phase or (lambda what, detail: None)
    started = time.perf_counter()
    model = getattr(agent, "model", None)
    config = getattr(agent, "config", None)
    tool_env = getattr(config, "tool_env", None)
    options = {
        # Who plays, for the trajectory's `reset` line and the reports.
        "run_info": {
            "agent": getattr(agent, "name", type(agent).__name__),
            "model": getattr(model, "name", None) if model is not None else None,
        },
        "tool_env": tool_env() if callable(tool_env) else {},  # the agent's lint rules, say
    }
    model_stats: dict[str, Any] = {}

    def note(record: dict[str, Any] | None) -> None:
        """Write what the agent returned with its move into the next step's line."""
        nonlocal model_stats
        if record:
            env.annotate_next_step(**record)
            model_stats = record.get("model_stats", model_stats)

    try:
        observation, info = env.reset(seed=seed, options=options)
        note(agent.reset(env.task, observation, info))
        reward, done, stopped = 0.0, False, False
        try:
            while not done:
                if stopping():
                    stopped = True
                    break
                phase("thinking", "")
                try:
                    action = as_action(agent.act(observation, info))
                except Exception as exc:  # the model's replies are recorded even when the agent gives up
                    note(record_of(exc))
                    raise
                note(action.record)
                phase("running", action.command)
                observation, step_reward, terminated, truncated, info = env.step(action.command)
                reward = float(step_reward)
                done = terminated or truncated
                if on_step is not None:
                    on_step(StepEvent(info["step"], action.command, observation, reward, info, env.last_step_seconds))
        except Exception as exc:
            if stopping():  # a command or model call cut short by the stop itself
                stopped = True
            else:
                # Budgets, format errors, context overflows and API errors carry their exit status.
                status = getattr(exc, "status", None) or "agent_error"
                error = f"{type(exc).__name__}: {exc}"
                try:
                    observation, reward, info = env.end_episode(status)
                except Exception as failure:
                    research = env.unwrapped
                    if not isinstance(research, ResearchEnv) or not research.episode_over:
                        raise
                    # Auto-submitted and scored, then recording that failed (as the step's did):
                    # the episode keeps what it scored; the trajectory may lack its last lines.
                    info = research.outcome()
                    reward = final_reward(normalise(research.task, research.final_score))
                    error += f"; recording the auto-submission failed: {type(failure).__name__}: {failure}"
                info = {**info, "error": error}
        if stopped:
            raise EpisodeStopped(f"stopped at step {info['step']}: the run is stopping")
        result = _result(env, agent, info, reward, time.perf_counter() - started, model_stats)
    except BaseException:
        env.close()  # also on Ctrl-C: the trajectory gets its `end` line, the sandbox goes
        raise
    try:
        env.close()
    except Exception as exc:
        # The episode ended and was scored: a failure now (writing the trajectory's last line)
        # must not turn it into a failed episode that a resume plays again, or whatever caused
        # the failure (text the agent's code chose, once) would buy it another try.
        result.error = (result.error + "; " if result.error else "") + (
            f"closing the episode failed after it was scored: {type(exc).__name__}: {exc}"
        )
    return result


def _result(
    env: ResearchEnv | EpisodeWrapper,
    agent: Agent,
    info: dict[str, Any],
    reward: float,
    seconds: float,
    model_stats: dict[str, Any],
) -> EpisodeResult:
    return EpisodeResult(
        task=env.task.id,
        agent=getattr(agent, "name", type(agent).__name__),
        seed=info["seed"],
        exit_status=info["exit_status"],
        final_score=info["final_score"],
        reward=reward,
        steps=info["step"],
        duration_s=seconds,
        trajectory=str(env.trajectory_path) if env.trajectory_path else None,
        scores=info["scores"],
        model_stats=model_stats,
        error=info.get("error"),
    )
