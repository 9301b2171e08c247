"""`ResearchEnv`: a research task as a Gymnasium environment over a sandboxed shell.

Actions are shell commands; observations are their output. `validate` (a command on the
sandbox PATH) scores the current artefact on the validation split and shows the score;
`submit` scores it on the hidden test split and terminates the episode. Every validated
artefact is also kept and scored on the test split when the episode ends (never shown to the
agent, and never while it can still act, so its timing reveals nothing); the results are in the
final `info["scores"]`, so both "best attempt" and "best submission" are known.

Reward: 0 on every non-final step. On the final step (submit, or auto-submit when the step
limit truncates the episode) it is the test score's improvement over the task's baseline,
relative to the baseline's magnitude: (s - b) / |b| when maximising, (b - s) / |b| when
minimising; 0 means "as good as the baseline". A failed or missing submission gets -1.

This class is the task, its sandbox, its limits and its evaluation, nothing more. Other reward
modes, the step footer and the trajectory file are Gymnasium wrappers around it
(researchgym.wrappers; `researchgym.make` and `gymnasium.make` build the whole stack).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from researchgym.datasets import MANIFEST
from researchgym.errors import EvaluationError, TaskConfigError
from researchgym.eval_secrets import new_secret, test_seed
from researchgym.evaluation import Score, collect_artefact, dataset_mounts, evaluate
from researchgym.hardware import accelerator_env, check_gpus, sandbox_devices
from researchgym.sandbox import Sandbox, SandboxSpec, create_sandbox
from researchgym.sandbox.base import ExecResult, Interruptible
from researchgym.snapshot import read_regular_file
from researchgym.spaces import ShellText
from researchgym.tasks.registry import BUILTIN_DIR, load_task
from researchgym.tasks.spec import TaskLimits, TaskSpec
from researchgym.tools.actions import ActionError, prepare_action
from researchgym.tools.services import EpisodeServices, ResearchToolsConfig
from researchgym.training.rewards import final_reward, normalise

VALIDATE_MARKER = "@@researchgym:validate@@"
SUBMIT_MARKER = "@@researchgym:submit@@"


def normalised_reward(task: TaskSpec, score: float | None) -> float:
    """The final score as a reward: gain over the baseline relative to |baseline|; -1 unscored,
    and no less than that scored (rewards.final_reward)."""
    return final_reward(normalise(task, score))


def make_read_only(path: Path) -> None:
    """Advisory only (the agent owns its files): it signals "do not edit", it does not enforce."""
    if path.is_dir():
        for child in path.iterdir():
            make_read_only(child)
        path.chmod(0o555)
    else:
        path.chmod(0o444)


@dataclass(frozen=True)
class StepOutcome:
    """What the last step did for the score, for reward wrappers: its kind ("step", "validate"
    or "end"), the normalised validation score it got, and the normalised final score."""

    kind: str = "step"
    validation: float | None = None
    final: float | None = None


class ResearchEnv(gym.Env[str, str]):
    metadata = {"render_modes": ["ansi"], "render_fps": 1}
    #: The bare environment writes no trajectory; RecordEpisode (researchgym.wrappers) does.
    trajectory_path: Path | None = None

    def __init__(
        self,
        task: str | TaskSpec,
        *,
        sandbox: str = "bwrap",
        limits: dict[str, Any] | None = None,
        workspace_dir: str | Path | None = None,
        render_mode: str | None = None,
        window: int = 100,
        research_tools: ResearchToolsConfig | dict[str, Any] | None = None,
        eval_secret: bytes | None = None,
        tool_env: dict[str, str] | None = None,
    ) -> None:
        self.task: TaskSpec = task if isinstance(task, TaskSpec) else load_task(task)
        if limits:
            merged = self.task.limits.model_dump() | dict(limits)
            self.task = self.task.model_copy(update={"limits": TaskLimits.model_validate(merged)})
        self.task.check_available()
        missing = self.task.missing_requirements()
        if missing:
            from researchgym.extras import missing_requirements_problem

            raise TaskConfigError(
                self.task.config_path, "requirements", f"task '{self.task.id}' {missing_requirements_problem(missing)}"
            )
        check_gpus(self.task.id, self.task.requires.gpus, variants=self.task.requires.cpu_alternatives)
        self.task.ensure_datasets()  # once, into the cache; later uses find it there
        #: Host tools (memory, literature search) served to the sandbox through the gateway.
        self.research_tools = ResearchToolsConfig.model_validate(research_tools or {})
        self.research_tools.check()
        self._services: EpisodeServices | None = None
        #: The host's secret behind the test split's seeds (eval_secrets.py): a run's, or a fresh
        #: one from the operating system's random source, never derived from the episode seed.
        self._eval_secret = eval_secret if eval_secret is not None else new_secret()
        self.sandbox_name = sandbox
        self.workspace_dir = Path(workspace_dir) if workspace_dir else None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        if window < 3:
            raise ValueError(f"window must be at least 3 lines, got {window}")
        #: Lines the file viewer shows at once (RESEARCHGYM_WINDOW inside the sandbox).
        self.window = window
        #: Variables the interface commands read (RESEARCHGYM_LINT: the edit lint's rule set);
        #: an episode's `reset(options={"tool_env": ...})` adds the agent's under these.
        self.tool_env: dict[str, str] = dict(tool_env or {})
        self._episode_tool_env: dict[str, str] = {}
        self.observation_space = ShellText()
        self.action_space = ShellText()
        self._sandbox: Sandbox | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._state_tmp: tempfile.TemporaryDirectory[str] | None = None
        self._state_file: str | None = None
        self.workspace: Path | None = None
        self._last_observation = ""
        self._last_cwd = ""
        #: The last step's command result, timing, gateway calls and score outcome: what the
        #: wrappers (reward shaping, the trajectory) read after `step`.
        self.last_result: ExecResult | None = None
        self.last_step_seconds = 0.0
        self.last_tool_calls: list[dict[str, Any]] = []
        self.last_outcome = StepOutcome()
        self._snapshots: tempfile.TemporaryDirectory[str] | None = None
        self._pending: list[tuple[dict[str, Any], Path]] = []
        self._reset_state(episode_seed=0)

    def _reset_state(self, episode_seed: int) -> None:
        self.episode_seed = episode_seed
        self.episode_id = uuid.uuid4().hex[:12]
        self.steps = 0
        self._snapshot_bytes = 0
        self.scores: list[dict[str, Any]] = []
        self.exit_status: str | None = None
        self.final_score: float | None = None
        self._done = False
        self.last_result, self.last_tool_calls, self.last_outcome = None, [], StepOutcome()

    # ------------------------------------------------------------------ Gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode. `options["tool_env"]`: variables the agent's interface commands read
        (its lint rules, say), set in the sandbox under the environment's own `tool_env`."""
        super().reset(seed=seed)
        self.abandon_episode()
        self._teardown()
        episode_seed = seed if seed is not None else int(self.np_random.integers(2**31))
        self._reset_state(episode_seed)
        self._episode_tool_env = {str(k): str(v) for k, v in ((options or {}).get("tool_env") or {}).items()}
        self.workspace = self._make_workspace()
        if self.research_tools.groups:
            self._services = EpisodeServices(
                self.research_tools, task_id=self.task.id, episode_id=self.episode_id, step=lambda: self.steps
            )
        self._sandbox = create_sandbox(self.sandbox_name, self._sandbox_spec())
        self._sandbox.start()
        self._last_cwd = self._sandbox.workspace_path
        prompt = self.task.prompt() + "\n\n" + self._instructions()
        self._last_observation = prompt
        return prompt, self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._sandbox is None or self._done:
            raise RuntimeError("the episode is over (or was never started): call reset() first")
        if not isinstance(action, str):
            raise TypeError(f"an action is a shell command string, got {type(action).__name__}")
        self.steps += 1
        started = time.perf_counter()
        try:
            command = prepare_action(action)
        except ActionError as exc:
            result = ExecResult("", None, 0.0, cwd=self._last_cwd, notes=[str(exc)])
        else:
            result = self._sandbox.run(command, timeout_s=self.task.limits.timeout_for(action))
        self._last_cwd = result.cwd or self._last_cwd
        output, wants_validate, wants_submit = self._strip_requests(result.output)
        result.output = output
        parts = [result.observation()] if (result.output or result.notes) else []
        terminated, truncated = False, False
        kind, validation = "step", None
        if wants_validate and not wants_submit:
            parts.append(self._validate())
            kind = "validate"
            scored = self.scores[-1] if self.scores and self.scores[-1]["step"] == self.steps else {}
            validation = normalise(self.task, (scored.get("validation") or {}).get("value"))
        if wants_submit:
            parts.append(self._finish("submitted", kind="submit"))
            terminated = True
        elif self.steps >= self.task.limits.max_steps:
            parts.append(f"[researchgym] step limit ({self.task.limits.max_steps}) reached: auto-submitting.")
            parts.append(self._finish("autosubmission (max_steps)", kind="autosubmit"))
            truncated = True
        final = None
        if terminated or truncated:
            kind, final = "end", normalise(self.task, self.final_score)
            self._score_pending()
        self.last_outcome = StepOutcome(kind, validation, final)
        reward = normalised_reward(self.task, self.final_score) if kind == "end" else 0.0
        observation = "\n".join(p for p in parts if p)
        # Every gateway call of the step, refused ones included, goes in its trajectory line.
        self.last_tool_calls = self._services.drain() if self._services is not None else []
        self._last_observation = observation
        self.last_result = result
        info = self._info(result)
        self.last_step_seconds = time.perf_counter() - started
        if terminated or truncated:
            self._end_episode()
        return observation, reward, terminated, truncated, info

    def annotate_next_step(self, **fields: Any) -> None:
        """Fields for the next step's trajectory line; nothing is recorded here (RecordEpisode is)."""

    def end_episode(self, status: str) -> tuple[str, float, dict[str, Any]]:
        """End the episode now (a cost or time limit, an agent error) and auto-submit.

        Returns the observation, the final reward and the info. Safe to call on a finished episode.
        """
        if self._sandbox is None or self._done:
            return self._last_observation, 0.0, self._info()
        observation = self._finish(f"autosubmission ({status})", kind="autosubmit")
        self.last_outcome = StepOutcome("end", None, normalise(self.task, self.final_score))
        reward = normalised_reward(self.task, self.final_score)
        self._score_pending()
        self._last_observation = observation
        info = self._info()
        self._end_episode()
        return observation, reward, info

    def interrupt(self) -> None:
        """Stop the command running now, from another thread (a run stopping on Ctrl-C): the
        step returns with a note, as on a timeout. Does nothing between commands."""
        sandbox = self._sandbox
        if isinstance(sandbox, Interruptible):
            sandbox.interrupt()

    def render(self) -> str | None:
        return self._last_observation if self.render_mode == "ansi" else None

    def close(self) -> None:
        self.abandon_episode()
        self._teardown()
        super().close()

    @property
    def episode_over(self) -> bool:
        """No episode is running: never started, or ended (submitted, a limit, abandoned)."""
        return self._sandbox is None or self._done

    def abandon_episode(self) -> None:
        """End an unfinished episode (close, or reset mid-episode) with the status `closed`; its
        validations are still scored on test. Nothing happens when none is running."""
        if self._sandbox is None or self._done:
            return
        self.exit_status = self.exit_status or "closed"
        self._score_pending()
        self._end_episode()

    # --------------------------------------------------------------- internals
    def _instructions(self) -> str:
        limits = self.task.limits
        return (
            f"Your workspace is {self._sandbox.workspace_path if self._sandbox else '.'}. You have "
            f"{limits.max_steps} steps; each is one shell command (no interactive programs). Commands "
            f"time out after {limits.command_timeout_s:g}s, or {limits.training_timeout_s:g}s if they run "
            f"{'/'.join(limits.training_markers)}. `validate` scores your work; `submit` ends the episode."
        )

    def tool_state(self) -> dict[str, Any]:
        """What the tools keep between commands: the open file and the window's first line."""
        if self._state_file is None:
            return {}
        # The agent can replace the file (a FIFO, a symlink, something huge): never block on
        # it, never follow a link, read at most 64 KiB of a regular file.
        data = read_regular_file(self._state_file, 65536)
        try:
            state = json.loads(data) if data is not None else None
        except ValueError:
            return {}
        return state if isinstance(state, dict) else {}

    def footer(self) -> str:
        """The step footer (step, steps left, open file, directory, memory) that StepFooter adds."""
        remaining = self.task.limits.max_steps - self.steps
        open_file = str(self.tool_state().get("open_file") or "n/a")[:500]
        memory = f" {self._services.footer()}" if self._services is not None and self._services.memory else ""
        return (
            f"(Current step: {self.steps}, remaining: {remaining}) (Open file: {open_file}) "
            f"(Current directory: {self._last_cwd}){memory}"
        )

    def _make_workspace(self) -> Path:
        if self.workspace_dir is not None:
            root = self.workspace_dir / f"{self.task.id}-{self.episode_id}"
            root.mkdir(parents=True, exist_ok=False)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"researchgym-{self.task.id}-")
            root = Path(self._tmp.name)
        for item in self.task.starter_files:
            source, target = self.task.path(item.src), root / item.target
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copyfile(source, target)
            if item.read_only:
                make_read_only(target)
        return root

    def _sandbox_spec(self) -> SandboxSpec:
        assert self.workspace is not None
        mounts = dataset_mounts(self.task, self.workspace, self.sandbox_name)
        hidden = [*self.task.hidden_paths(), self.task.source_dir, BUILTIN_DIR]
        # A prepared dataset's manifest holds the SHA-256 of every file, the hidden answers too:
        # enough to confirm a guessed answer file, so the agent does not see it.
        hidden += [self.task.dataset_path(ds) / MANIFEST for ds in self.task.datasets if ds.prepare]
        self._state_tmp = tempfile.TemporaryDirectory(prefix="researchgym-state-")
        self._state_file = os.path.join(self._state_tmp.name, "state.json")
        gateway = self._services.gateway if self._services is not None else None
        return SandboxSpec(
            workspace=self.workspace,
            mounts=mounts,
            hidden=hidden,
            limits=self.task.limits,
            state_dir=Path(self._state_tmp.name),
            env={
                **accelerator_env(self.task.requires.gpus),
                **self._episode_tool_env,
                **self.tool_env,
                "RESEARCHGYM_WINDOW": str(self.window),
            },
            devices=sandbox_devices() if self.task.requires.gpus else [],
            gateway_dir=gateway.folder if gateway is not None else None,
        )

    @staticmethod
    def _strip_requests(output: str) -> tuple[str, bool, bool]:
        if "@@researchgym:" not in output:
            return output, False, False
        kept, validate, submit = [], False, False
        for line in output.split("\n"):
            if line.strip() == VALIDATE_MARKER:
                validate = True
            elif line.strip() == SUBMIT_MARKER:
                submit = True
            else:
                kept.append(line)
        return "\n".join(kept), validate, submit

    def _eval_seed(self, split: str) -> int:
        """Validation: reproducible from the episode seed. Test: unpredictable without the host's
        secret, the same for every evaluation of the episode."""
        if split == "test":
            return test_seed(self._eval_secret, self.task.id, self.episode_seed)
        return self.task.derived_seed(self.episode_seed, split)

    def _score(self, split: str) -> Score:
        assert self.workspace is not None
        return evaluate(self.task, self.workspace, split=split, seed=self._eval_seed(split), sandbox=self.sandbox_name)

    def _validate(self) -> str:
        metric = self.task.metric
        entry: dict[str, Any] = {"step": self.steps, "kind": "validate"}
        try:
            validation = self._score("validation")
        except EvaluationError as exc:
            entry.update(status=exc.status, error=str(exc), detail=exc.detail)
            self.scores.append(entry)
            shown = f"\n{exc.detail}" if exc.detail else ""
            return f"Validation failed ({exc.status}): {exc}{shown}"
        entry["validation"] = validation.to_dict()
        if self.task.evaluation.has_test_split:
            self._snapshot_for_test(entry)
        else:
            entry["test"] = entry["validation"]
        self.scores.append(entry)
        baseline = self.task.baseline_score
        all_metrics = {k: v for k, v in validation.metrics.items() if k != "split"}
        return (
            f"Validation score: {metric.name} = {validation.value:.6g} ({metric.direction}; "
            f"baseline {baseline if baseline is not None else 'n/a'}). All metrics: {all_metrics}"
        )

    def _snapshot_for_test(self, entry: dict[str, Any]) -> None:
        """Keep a copy of the validated artefact; it is scored on the hidden test split when the
        episode ends. Scoring it now would let the agent's code signal test data through how
        long `validate` takes."""
        assert self.workspace is not None
        if self._snapshots is None:
            self._snapshots = tempfile.TemporaryDirectory(prefix="researchgym-snapshots-")
        folder = Path(self._snapshots.name) / f"step-{self.steps}"
        folder.mkdir()
        try:
            collect_artefact(self.task, self.workspace, folder)
        except Exception as exc:  # noqa: BLE001 - no artefact may end the episode as failed
            shutil.rmtree(folder, ignore_errors=True)
            entry["test"] = {"status": getattr(exc, "status", "evaluation_error"), "error": str(exc)}
            return
        # The kept copies are host disk the agent fills by validating: they share the
        # workspace's quota, and a validation past it is not scored on the test split.
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        budget = (self.task.limits.max_workspace_mb or 0) << 20
        if budget and self._snapshot_bytes + size > budget:
            shutil.rmtree(folder, ignore_errors=True)
            entry["test"] = {
                "status": "not_scored",
                "error": f"the validated artefacts kept for the test split passed the workspace quota "
                f"({budget >> 20} MiB); this one was not kept",
            }
            return
        self._snapshot_bytes += size
        entry["test"] = {"status": "pending"}
        self._pending.append((entry, folder))

    def _score_pending(self) -> None:
        """Score every validated artefact on the hidden test split (at the end of the episode)."""
        pending, self._pending = self._pending, []
        for entry, folder in pending:
            try:
                entry["test"] = evaluate(
                    self.task, folder, split="test", seed=self._eval_seed("test"), sandbox=self.sandbox_name
                ).to_dict()
            except EvaluationError as exc:
                entry["test"] = {"status": exc.status, "error": str(exc), "detail": exc.detail}

    def _finish(self, status: str, *, kind: str) -> str:
        entry: dict[str, Any] = {"step": self.steps, "kind": kind}
        split = "test" if self.task.evaluation.has_test_split else "validation"
        try:
            score = self._score(split)
        except EvaluationError as exc:
            # The test-split output stays in info and the trajectory, never in the observation.
            entry.update(status=exc.status, error=str(exc), detail=exc.detail)
            self.scores.append(entry)
            self.exit_status = exc.status if kind == "submit" else f"{status}: {exc.status}"
            self.final_score = None
            return f"Submission could not be scored ({exc.status}): {exc}"
        entry["test"] = score.to_dict()
        self.scores.append(entry)
        self.exit_status = status
        self.final_score = score.value
        return f"Submitted. Test score: {self.task.metric.name} = {score.value:.6g}"

    def outcome(self) -> dict[str, Any]:
        """The episode's info as it stands (seed, step, scores, exit status, final score): what
        run_episode keeps when recording its end failed after it was scored."""
        return self._info()

    def _info(self, result: ExecResult | None = None) -> dict[str, Any]:
        # Only what a seed determines: no ids, paths or timings (those are attributes and
        # trajectory fields; RecordEpisode adds the trajectory's path once the episode is over).
        info: dict[str, Any] = {
            "task": self.task.id,
            "seed": self.episode_seed,
            "step": self.steps,
            "max_steps": self.task.limits.max_steps,
            "scores": [dict(s) for s in self.scores],
            "exit_status": self.exit_status,
            "final_score": self.final_score,
            "tool_groups": self.research_tools.groups,
            "reward_mode": "final",
        }
        if result is not None:
            info.update(exit_code=result.exit_code, timed_out=result.timed_out, cwd=result.cwd)
        return info

    def _end_episode(self) -> None:
        """The one way an episode ends (submit, a limit, an autosubmission, close or reset
        mid-episode): the episode's sandbox and services go; its workspace stays until reset."""
        self._done = True
        if self._sandbox is not None:
            self._sandbox.close()
        if self._services is not None:
            self._services.close()
            self._services = None

    def _teardown(self) -> None:
        """Forget the last episode (on reset and close): its sandbox, services and temp folders."""
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        if self._services is not None:
            self._services.close()
            self._services = None
        for tmp in (self._tmp, self._state_tmp, self._snapshots):
            if tmp is not None:
                tmp.cleanup()
        self._tmp = self._state_tmp = self._snapshots = None
        self._pending = []
