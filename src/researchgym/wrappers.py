"""The layers around `ResearchEnv`, as Gymnasium wrappers, and the factory that stacks them.

    RecordEpisode(StepFooter(ShapedReward(ResearchEnv(task, ...))))

* `ShapedReward`: the reward mode ("final", "dense" or a callable; researchgym.training.rewards).
  The bare environment already pays "final"; the wrapper replaces it from the step's outcome.
* `StepFooter`: ends every observation but the last with the step footer (step, steps left,
  open file, directory, memory), as MLGym's agents expect.
* `RecordEpisode`: the trajectory file (runs/trajectory.py). It is the outermost layer, so
  the observation and reward it records are the ones the agent got.

Besides the Gymnasium API, each layer has `end_episode(status)` (end now and auto-submit: a
cost or time limit, an agent error) and `annotate_next_step(**fields)` (the agent's record for
the next trajectory line), so `run_episode` plays a bare environment or any stack of these.
`make_env` builds the stack; `researchgym.make` and `gymnasium.make("researchgym/...")` call it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

from researchgym.env import ResearchEnv
from researchgym.runs.trajectory import TrajectoryRecorder
from researchgym.tasks.registry import load_task
from researchgym.tasks.spec import TaskSpec
from researchgym.training.rewards import Rewarder, RewardEvent, RewardFn


class EpisodeWrapper(gym.Wrapper[str, str, str, str]):
    """A wrapper that passes researchgym's episode calls through, and shows the episode's state
    (task, workspace, steps, scores) read-only, so code written for the bare environment
    reads it the same way through the stack."""

    def __init__(self, env: ResearchEnv | EpisodeWrapper) -> None:
        super().__init__(env)
        self.inner: ResearchEnv | EpisodeWrapper = env

    @property
    def research_env(self) -> ResearchEnv:
        env = self.unwrapped
        assert isinstance(env, ResearchEnv)
        return env

    def end_episode(self, status: str) -> tuple[str, float, dict[str, Any]]:
        return self.inner.end_episode(status)

    def annotate_next_step(self, **fields: Any) -> None:
        self.inner.annotate_next_step(**fields)

    @property
    def task(self) -> TaskSpec:
        return self.research_env.task

    @property
    def workspace(self) -> Path | None:
        return self.research_env.workspace

    @property
    def steps(self) -> int:
        return self.research_env.steps

    @property
    def scores(self) -> list[dict[str, Any]]:
        return self.research_env.scores

    @property
    def last_step_seconds(self) -> float:
        return self.research_env.last_step_seconds

    @property
    def trajectory_path(self) -> Path | None:
        return self.inner.trajectory_path


class ShapedReward(EpisodeWrapper):
    """Rewards steps under a mode: "final" (what the bare environment pays), "dense"
    (potential-based shaping on validations) or a callable `fn(RewardEvent) -> float`."""

    def __init__(self, env: ResearchEnv | EpisodeWrapper, reward: str | RewardFn = "final") -> None:
        super().__init__(env)
        self.rewarder = Rewarder(reward)

    @property
    def reward_mode(self) -> str:
        return self.rewarder.name

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        self.rewarder.reset()
        observation, info = self.env.reset(seed=seed, options=options)
        return observation, {**info, "reward_mode": self.rewarder.name}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, _, terminated, truncated, info = self.env.step(action)
        return observation, self._reward(), terminated, truncated, {**info, "reward_mode": self.rewarder.name}

    def end_episode(self, status: str) -> tuple[str, float, dict[str, Any]]:
        ended_now = not self.research_env.episode_over
        observation, reward, info = self.inner.end_episode(status)
        if ended_now:
            reward = self._reward()
        return observation, reward, {**info, "reward_mode": self.rewarder.name}

    def _reward(self) -> float:
        env = self.research_env
        outcome = env.last_outcome
        event = RewardEvent(outcome.kind, env.steps, outcome.validation, outcome.final, self.rewarder.best, env.task)
        return self.rewarder(event)


class StepFooter(EpisodeWrapper):
    """Ends each observation of a running episode with the step footer."""

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        if not (terminated or truncated):
            footer = self.research_env.footer()
            observation = f"{observation}\n{footer}" if observation else footer
        return observation, float(reward), terminated, truncated, info


class RecordEpisode(EpisodeWrapper):
    """Writes each episode to `<folder>/<task>-<episode>.jsonl`: a `reset` record, a `step` per
    action (with what the agent recorded with it), an `autosubmit` when `end_episode` cut it
    short, and one `end`, however the episode ends (submit, a limit, reset or close mid-way).

    `reset(options={"run_info": {...}})` names who plays (agent, model) for the reports."""

    def __init__(self, env: ResearchEnv | EpisodeWrapper, folder: str | Path) -> None:
        super().__init__(env)
        self.folder = Path(folder)
        self._recorder: TrajectoryRecorder | None = None
        self._path: Path | None = None
        self._annotation: dict[str, Any] = {}

    @property
    def trajectory_path(self) -> Path | None:
        return self._path

    def annotate_next_step(self, **fields: Any) -> None:
        """Attach fields (the model's replies, tokens, cost) to the next step's trajectory line."""
        self._annotation.update(fields)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        self._abandon()
        options = dict(options or {})
        run_info = options.pop("run_info", None) or {}
        observation, info = self.env.reset(seed=seed, options=options)
        env = self.research_env
        self._annotation = {}
        self._path = self.folder / f"{env.task.id}-{env.episode_id}.jsonl"
        self._recorder = TrajectoryRecorder(self._path)
        tools = env.research_tools
        self._recorder.reset(
            task=env.task.id,
            gym_id=env.task.gym_id,
            seed=env.episode_seed,
            sandbox=env.sandbox_name,
            episode=env.episode_id,
            prompt=observation,
            limits=env.task.limits.model_dump(),
            options=options,
            run_info=run_info,
            research_tools=tools.model_dump(mode="json") if tools.groups else None,
            reward=info.get("reward_mode", "final"),
            result_via="channel" if env.task.evaluation.result_channel else "stdout",
            task_facts=env.task.rating_facts(),
        )
        return observation, info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, step_reward, terminated, truncated, info = self.env.step(action)
        reward = float(step_reward)
        env, recorder = self.research_env, self._recorder
        result = env.last_result
        if recorder is not None and result is not None:
            annotation, self._annotation = self._annotation, {}
            if env.last_tool_calls:
                annotation["tool_calls"] = [*annotation.get("tool_calls", []), *env.last_tool_calls]
            scores = env.scores
            recorder.step(
                **{
                    **annotation,
                    "step": env.steps,
                    "action": action,
                    "observation": observation,
                    "exit_code": result.exit_code,
                    "timed_out": result.timed_out,
                    "cwd": result.cwd,
                    "command_s": round(result.duration_s, 6),
                    "step_s": round(env.last_step_seconds, 6),
                    "cut_bytes": result.cut_bytes,
                    "reward": reward,
                    "terminated": terminated,
                    "truncated": truncated,
                    "scores": scores[-1:] if scores and scores[-1]["step"] == env.steps else [],
                }
            )
        if terminated or truncated:
            self._write_end()
            info = {**info, "trajectory": str(self._path) if self._path else None}
        return observation, reward, terminated, truncated, info

    def end_episode(self, status: str) -> tuple[str, float, dict[str, Any]]:
        ended_now = not self.research_env.episode_over
        observation, reward, info = self.inner.end_episode(status)
        if ended_now and self._recorder is not None:
            annotation, self._annotation = self._annotation, {}
            fields = {
                "reason": status,
                "observation": observation,
                "reward": reward,
                "scores": self.research_env.scores[-1:],
            }
            self._recorder.autosubmit(**{**annotation, **fields})
            self._write_end()
        return observation, reward, {**info, "trajectory": str(self._path) if self._path else None}

    def close(self) -> None:
        try:
            self._abandon()
        finally:
            super().close()

    def _abandon(self) -> None:
        """An episode still running when reset or close comes ends as `closed`, with its `end`."""
        if self._recorder is None:
            return
        self.research_env.abandon_episode()
        self._write_end()

    def _write_end(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is None:
            return
        env = self.research_env
        try:
            recorder.end(exit_status=env.exit_status, steps=env.steps, final_score=env.final_score, scores=env.scores)
        finally:
            recorder.close()


def make_env(
    task: str | TaskSpec,
    *,
    reward: str | RewardFn = "final",
    footer: bool = True,
    trajectory_dir: str | Path | None = None,
    **env_kwargs: Any,
) -> ResearchEnv | EpisodeWrapper:
    """A task's environment with its layers: `reward` mode, the step `footer`, and a trajectory
    file per episode under `trajectory_dir`. Other keyword arguments go to `ResearchEnv`
    (sandbox, limits, workspace_dir, window, research_tools, eval_secret, tool_env)."""
    Rewarder(reward)  # a bad mode is refused before the task's data and sandbox are touched
    spec = task if isinstance(task, TaskSpec) else load_task(task)
    env: ResearchEnv | EpisodeWrapper = ResearchEnv(spec, **env_kwargs)
    try:
        if reward != "final":
            env = ShapedReward(env, reward)
        if footer:
            env = StepFooter(env)
        if trajectory_dir is not None:
            env = RecordEpisode(env, trajectory_dir)
    except Exception:
        env.close()
        raise
    return env
