"""Scoring a submission in fresh sandboxes that the agent never touched.

The protocol, the same for every task (docs/security.md, "The evaluation protocol"):

1. The artefact is snapshotted out of the workspace without following links (snapshot.py):
   regular files and folders only, sizes capped by apparent and allocated size.
2. The evaluator runs in a sandbox of its own with the task's evaluation files, the datasets
   read-only and the hidden files this split may use (test labels are withheld while
   validating). When the task runs agent code (`evaluation.agent_code`: a strategy, a
   heuristic, a policy), that code runs in a second sandbox holding the artefact and the task's
   public server files only: no dataset, no hidden file, no secret. The two are joined by two
   pipes and nothing else (see _shared/agent_link.py); the evaluator checks every answer.
3. The result travels on a channel the agent's code cannot write: a file in a folder bound
   into the evaluator's sandbox alone (`result: channel`, required with agent code). Tasks that
   run no agent code may keep MLGym's convention (`result: stdout`: the last JSON object line
   of the output). Either way the result is parsed strictly (bounded size and nesting);
   anything else is `evaluation_format_error`, never a crash. Every number in it, the score
   and every other metric, must be finite: NaN, Infinity or a number beyond a float's range
   anywhere in the result is `evaluation_non_finite`, naming where it was.
4. The seed the evaluator gets is the caller's: for the test split a secret drawn from the
   operating system's random source and held by the host (see eval_secrets.py).

Nothing raised while scoring escapes as anything but an EvaluationError with a status, so no
artefact can make its episode end as `failed` (and be played again on resume).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from researchgym.compile_cache import EVALUATOR_VARIABLE, CompileCache
from researchgym.errors import EvaluationError, SandboxError
from researchgym.hardware import accelerator_env, sandbox_devices
from researchgym.sandbox import (
    AGENT_WORKSPACE,
    ExecResult,
    Limits,
    Mount,
    SandboxSpec,
    create_sandbox,
    path_inside,
    sees_host_paths,
)
from researchgym.snapshot import SnapshotLimits, read_regular_file, snapshot, whole_workspace
from researchgym.strict_json import without_surrogates
from researchgym.tasks.builtin._shared.agent_link import (
    LINK_VARIABLE,
    MAX_DEPTH,
    RESULT_VARIABLE,
    WITNESS_LINK_VARIABLE,
    strict_loads,
)
from researchgym.tasks.spec import FileSpec, TaskSpec
from researchgym.training.rewards import normalise

#: Where the evaluator's result folder appears in an isolating sandbox.
RESULT_DIR = "/run/researchgym-result"
#: Where the evaluator's copy of its compile cache appears in an isolating sandbox.
COMPILE_CACHE_DIR = "/run/researchgym-compile-cache"
RESULT_NAME = "result.json"
#: The largest result (or output line) read as one.
MAX_RESULT_BYTES = 1 << 20


@dataclass
class Score:
    """One evaluation of one artefact on one split."""

    split: str
    metrics: dict[str, Any]
    value: float | None
    duration_s: float
    output_tail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # No timing here: info must be deterministic for a seed (Gymnasium's check_env).
        return {"split": self.split, "metrics": self.metrics, "value": self.value}


#: Digits of the longest integer within a float's range (strict_loads refuses longer ones).
MAX_INTEGER_DIGITS = 308


def _metrics_object(text: str) -> dict[str, Any] | None:
    """One strictly parsed JSON object, or None. A number outside a float's range (NaN,
    Infinity, -Infinity, 1e999, an integer of more than 308 digits) does not make the object
    malformed: it is read as the non-finite float it stands for, so that scoring refuses the
    result as `evaluation_non_finite`, naming the metric, rather than as a format error.
    A surrogate its strings spell (`\\ud800`, say in an error message the agent's code raised)
    becomes U+FFFD: it could not be written to the trajectory or the store."""
    if len(text) > MAX_RESULT_BYTES:
        return None
    try:
        value = strict_loads(text)
    except (ValueError, RecursionError):
        value = _with_non_finite_numbers(text)
    return without_surrogates(value) if isinstance(value, dict) else None


def _out_of_range_integer(text: str) -> int | float:
    if len(text.lstrip("-")) <= MAX_INTEGER_DIGITS:
        return int(text)
    return -math.inf if text.startswith("-") else math.inf


def _with_non_finite_numbers(text: str) -> Any:
    """What strict_loads refused, when the only fault was a number outside a float's range:
    the value with those numbers as non-finite floats. Anything else it refused (bad JSON,
    nesting past MAX_DEPTH) is None, as before."""
    try:
        value = json.loads(text, parse_constant=float, parse_float=float, parse_int=_out_of_range_integer)
    except (ValueError, RecursionError):
        return None
    if _depth(value) > MAX_DEPTH or not non_finite_numbers(value):
        return None
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level + 1)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def non_finite_numbers(value: Any, limit: int = 5) -> list[str]:
    """Where a parsed result holds a non-finite number: up to `limit` places, each as
    `name = value` (`details.returns[3] = -inf`), in the order they appear."""
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("", value)]
    while stack and len(found) < limit:
        where, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            found.append(f"{where or 'the result'} = {item!r}")
        elif isinstance(item, dict):
            children = [(f"{where}.{key}" if where else str(key), child) for key, child in item.items()]
            stack.extend(reversed([(name[:100], child) for name, child in children]))
        elif isinstance(item, list):
            stack.extend(reversed([(f"{where}[{index}]", child) for index, child in enumerate(item)]))
    return found


def last_json_object(text: str, token: str | None = None) -> dict[str, Any] | None:
    """The metrics line of `result: stdout`: the last JSON object carrying `token` if any line
    carries one, else the last JSON object. Lines are parsed strictly (a line with absurd
    nesting or bad JSON is not a metrics line); a line whose only fault is a non-finite number
    is one, and scoring refuses it (see _metrics_object)."""
    objects = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            value = _metrics_object(line)
            if value is not None:
                objects.append(value)
    if token is not None and any("token" in obj for obj in objects):
        signed = [obj for obj in objects if obj.get("token") == token]
        if not signed:
            return None
        return {k: v for k, v in signed[-1].items() if k != "token"}
    return objects[-1] if objects else None


def read_result_file(folder: Path) -> dict[str, Any] | None:
    """The evaluator's result from its channel: exactly one JSON object, or None."""
    data = read_regular_file(folder / RESULT_NAME, MAX_RESULT_BYTES + 1)
    if data is None:
        return None
    try:
        return _metrics_object(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None


def collect_artefact(task: TaskSpec, workspace: Path, destination: Path) -> list[str]:
    """Snapshot the submission artefact from the workspace; raise if any part is missing or is
    anything but regular files and folders."""
    mounts = {ds.mount_point.strip("/").split("/")[0] for ds in task.datasets}
    names = task.submission.artefacts or whole_workspace(workspace, skip=mounts)
    limits = SnapshotLimits(
        max_bytes=task.limits.max_workspace_mb << 20 if task.limits.max_workspace_mb else None,
        max_files=task.limits.max_workspace_files,
    )
    return snapshot(workspace, names, destination, limits)


def _is_within(path: Path, folders: list[Path]) -> bool:
    return any(path == folder or path.is_relative_to(folder) for folder in folders)


def place_files(task: TaskSpec, files: list[FileSpec], folder: Path, withheld: list[Path]) -> None:
    """Copy task files next to the artefact; they replace anything the agent put there under the
    same name. Hidden files withheld for this split are left out."""
    for item in files:
        source = task.path(item.src)
        target = folder / item.target
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()  # the agent's file of that name never stands in, withheld or not
        if _is_within(source, withheld):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(
                source, target, ignore=lambda d, names: [n for n in names if _is_within(Path(d, n).resolve(), withheld)]
            )
        else:
            shutil.copyfile(source, target)


def evaluate(
    task: TaskSpec,
    workspace: Path,
    *,
    split: str,
    seed: int,
    sandbox: str = "bwrap",
) -> Score:
    """Score the artefact now in `workspace` on `split`. Raises EvaluationError with a status,
    and nothing else: a fault of researchgym's while scoring is `evaluation_error` too."""
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="researchgym-eval-") as tmp:
            run = _EvaluationRun(task, Path(tmp), split, seed, sandbox)
            run.prepare(workspace)
            return run.score(started)
    except EvaluationError:
        raise
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise EvaluationError(
            "evaluation_error", f"researchgym could not score the submission: {type(exc).__name__}: {exc}"
        ) from exc


@dataclass
class _Outcome:
    evaluator: ExecResult
    agent_code: ExecResult | None
    result_file: dict[str, Any] | None
    witness: ExecResult | None = None


class _EvaluationRun:
    """One evaluation: its folders, its sandboxes (the evaluator's; the agent's code's, and its
    witness's when the task asks for one), its result."""

    def __init__(self, task: TaskSpec, root: Path, split: str, seed: int, sandbox: str) -> None:
        self.task, self.root, self.split, self.seed, self.sandbox = task, root, split, seed, sandbox
        self.withheld = task.withheld_paths(split)
        self.code = task.evaluation.agent_code
        self.artefact = root / "artefact"
        #: The witness's own copy of the artefact, made before any of the agent's code runs.
        self.witness = root / "witness" if self.code is not None and self.code.witness else None
        self.evaluator = root / "evaluator" if self.code else self.artefact
        self.results = root / "result"
        self.cache = CompileCache.for_task(task)
        self.compiled = root / "compile-cache"
        self.token = secrets.token_hex(16)

    def prepare(self, workspace: Path) -> None:
        for folder in {self.artefact, self.evaluator, self.results}:
            folder.mkdir()
        collect_artefact(self.task, workspace, self.artefact)
        try:
            if self.code is not None:
                place_files(self.task, self.code.files, self.artefact, self.withheld)
            place_files(self.task, self.task.evaluation.files, self.evaluator, self.withheld)
        except OSError as exc:
            raise EvaluationError("evaluation_error", f"could not prepare the evaluation folder: {exc}") from exc
        if self.witness is not None:
            try:
                shutil.copytree(self.artefact, self.witness, symlinks=True)
            except OSError as exc:
                raise EvaluationError("evaluation_error", f"could not prepare the witness's folder: {exc}") from exc
        write_secrets(self.evaluator, self.token, self.seed)
        if self.cache is not None:
            self.compiled.mkdir()
            try:
                self.cache.stage(self.compiled)
            except OSError:
                pass  # the evaluator compiles afresh

    def _publish_compiled(self, outcome: _Outcome) -> None:
        """Keep what the evaluator compiled, once it finished by itself (it reported, so its
        writes are complete). A cache that cannot be written costs time, never the score."""
        if self.cache is None or outcome.evaluator.timed_out or outcome.result_file is None:
            return
        try:
            self.cache.publish(self.compiled)
        except OSError:
            pass

    def _inside(self, folder: Path, isolated: str) -> str:
        return path_inside(self.sandbox, folder, isolated)

    def _limits(self) -> Limits:
        limits = self.task.limits
        return Limits(
            memory_mb=limits.memory_mb,
            cpus=limits.cpus,
            max_processes=limits.max_processes,
            max_file_size_mb=limits.max_file_size_mb,
            command_timeout_s=self.task.evaluation.timeout_s,
            max_output_chars=200_000,
        )

    def _evaluator_spec(self, link: tuple[int, int] | None, witness: tuple[int, int] | None = None) -> SandboxSpec:
        env = {
            **accelerator_env(self.task.requires.gpus),
            "RESEARCHGYM_SPLIT": self.split,
            "RESEARCHGYM_SECRETS_FILE": f"{self._inside(self.evaluator, AGENT_WORKSPACE)}/{SECRETS_FILE}",
            RESULT_VARIABLE: f"{self._inside(self.results, RESULT_DIR)}/{RESULT_NAME}",
        }
        if link is not None:
            env[LINK_VARIABLE] = f"{link[0]},{link[1]}"
        if witness is not None:
            env[WITNESS_LINK_VARIABLE] = f"{witness[0]},{witness[1]}"
        if self.cache is not None:
            env[EVALUATOR_VARIABLE] = self._inside(self.compiled, COMPILE_CACHE_DIR)
        mounts = dataset_mounts(self.task, self.evaluator, self.sandbox)
        if not sees_host_paths(self.sandbox):
            mounts.append(Mount(self.results, RESULT_DIR, read_only=False))
            if self.cache is not None:
                mounts.append(Mount(self.compiled, COMPILE_CACHE_DIR, read_only=False))
        return SandboxSpec(
            workspace=self.evaluator,
            mounts=mounts,
            hidden=self.withheld,
            env=env,
            devices=sandbox_devices() if self.task.requires.gpus else [],
            limits=self._limits(),
            pass_fds=(*(link or ()), *(witness or ())),
        )

    def _agent_code_spec(self, link: tuple[int, int], artefact: Path | None = None) -> SandboxSpec:
        """The agent's code's sandbox, on `artefact` (the artefact folder, or the witness's copy)."""
        from researchgym.tasks.registry import BUILTIN_DIR

        hidden = [*self.task.hidden_paths(), self.task.source_dir, BUILTIN_DIR]
        return SandboxSpec(
            workspace=artefact or self.artefact,
            hidden=hidden,
            limits=self._limits(),
            env=accelerator_env(self.task.requires.gpus),
            devices=sandbox_devices() if self.task.requires.gpus else [],
            pass_fds=link,
        )

    def _run(self) -> _Outcome:
        command = self.task.evaluation.command.replace("{split}", self.split).replace("{seed}", str(self.seed))
        timeout = self.task.evaluation.timeout_s
        if self.code is None:
            box = create_sandbox(self.sandbox, self._evaluator_spec(None))
            try:
                box.start()
                return _Outcome(box.run(command, timeout_s=timeout), None, read_result_file(self.results))
            finally:
                box.close()
        code = self.code
        # One link per copy of the agent's code: (its folder, the evaluator's ends, its ends).
        copies = [self.artefact, *([self.witness] if self.witness is not None else [])]
        links = []
        for folder in copies:
            to_agent_read, to_agent_write = os.pipe()
            from_agent_read, from_agent_write = os.pipe()
            links.append((folder, (to_agent_write, from_agent_read), (to_agent_read, from_agent_write)))
        pipes = [fd for _, ours, theirs in links for fd in (*ours, *theirs)]
        evaluator_ends = [fd for _, ours, _ in links for fd in ours]
        evaluator = create_sandbox(
            self.sandbox, self._evaluator_spec(links[0][1], links[1][1] if len(links) > 1 else None)
        )
        agents = [create_sandbox(self.sandbox, self._agent_code_spec(theirs, folder)) for folder, _, theirs in links]
        try:
            try:
                evaluator.start()
                for agent in agents:
                    agent.start()
            finally:
                for descriptor in pipes:  # the sandboxes hold them now; EOF must reach each side
                    os.close(descriptor)
            servers: list[tuple[Any, threading.Thread, list[ExecResult]]] = []
            for agent, (_, _, (to_agent_read, from_agent_write)) in zip(agents, links):
                # The agent's code gets the link as stdin/stdout; its shell keeps no copy, so the
                # evaluator reads end-of-file as soon as that code exits.
                serve = _holding_only(
                    f"{{ {code.command} ; }} <&{to_agent_read} >&{from_agent_write} "
                    f"{to_agent_read}<&- {from_agent_write}>&-",
                    (to_agent_read, from_agent_write),
                )
                served: list[ExecResult] = []
                server = threading.Thread(
                    target=lambda agent=agent, serve=serve, served=served: served.append(
                        agent.run(serve, timeout_s=timeout + 60)
                    ),
                    daemon=True,
                    name="researchgym-agent-code",
                )
                server.start()
                servers.append((agent, server, served))
            result = evaluator.run(_holding_only(command, tuple(evaluator_ends)), timeout_s=timeout)
            outcome = _Outcome(result, None, read_result_file(self.results))
            for agent, server, _ in servers:
                shell = getattr(agent, "shell", None)
                while server.is_alive():  # stop the agent's code: the evaluator is done with it
                    if shell is not None:
                        shell.interrupt()
                    server.join(timeout=0.2)
                    if shell is None:
                        break
            outcome.agent_code = servers[0][2][0] if servers[0][2] else None
            if len(servers) > 1 and servers[1][2]:
                outcome.witness = servers[1][2][0]
            return outcome
        finally:
            for agent in agents:
                agent.close()
            evaluator.close()

    def score(self, started: float) -> Score:
        try:
            outcome = self._run()
        except SandboxError as exc:
            raise EvaluationError("evaluation_error", f"the evaluation sandbox failed: {exc}") from exc
        self._publish_compiled(outcome)
        result = outcome.evaluator
        tail = result.output[-4000:]
        sides = [
            (name, run.output[-limit:])
            for name, run, limit in (
                ("the agent's code", outcome.agent_code, 3000),
                ("the agent's code, witness copy", outcome.witness, 2000),
            )
            if run is not None and run.output.strip()
        ]
        if sides:
            tail = "".join(f"--- output of {name} ---\n{text}\n" for name, text in sides) + (
                f"--- output of the evaluator ---\n{tail}"
            )
        tail = tail.replace(self.token, "<result-token>")
        duration = time.perf_counter() - started
        timeout = self.task.evaluation.timeout_s
        if result.timed_out:
            raise EvaluationError("evaluation_timeout", f"evaluation took longer than {timeout:g}s", tail)
        if self.task.evaluation.result_channel:
            metrics = outcome.result_file
            missing = "the evaluator wrote no valid result on its channel (one JSON object, finite numbers)"
        else:
            metrics = last_json_object(result.output, self.token)
            missing = "no JSON metrics line"
        if metrics is None or "error" in metrics or result.exit_code != 0:
            reason = metrics.get("error") if metrics else None
            raise EvaluationError(
                _reported_status(metrics),
                f"evaluation failed (exit code {result.exit_code}): {reason or missing}",
                tail,
            )
        refuse_non_finite(metrics, tail)
        return Score(
            split=self.split,
            metrics=metrics,
            value=metric_value(self.task, metrics),
            duration_s=duration,
            output_tail=tail,
        )


def _holding_only(command: str, descriptors: tuple[int, ...]) -> str:
    """Run `command` in the background and close the shell's own copies of the link's
    descriptors, so each side reads end-of-file as soon as the other side's process exits."""
    closing = " ".join(f"{fd}<&-" for fd in descriptors)
    return f"{{ {command}\n}} & exec {closing}; wait $! 2>/dev/null"


def refuse_non_finite(metrics: dict[str, Any], detail: str = "") -> None:
    """evaluation_non_finite when any number of the result, the score or any other metric or
    detail, is NaN, infinite or beyond a float's range. Every metric is kept in the episode's
    scores and shown to the agent, so none may be a number that JSON cannot hold."""
    found = non_finite_numbers(metrics)
    if found:
        raise EvaluationError(
            "evaluation_non_finite",
            f"the evaluator reported {', '.join(found)}: every metric must be a finite number within a float's range",
            detail,
        )


def metric_value(task: TaskSpec, metrics: dict[str, Any]) -> float:
    """The task's metric as a finite float whose reward (gain over the baseline) is finite too;
    evaluation_non_finite when it is not, evaluation_format_error when it is no number."""
    name = task.metric.name
    value = metrics.get(name)
    if name not in metrics:  # MLGym configs and evaluators may differ in case ("Accuracy")
        same = [key for key in metrics if isinstance(key, str) and key.lower() == name.lower()]
        value = metrics[same[0]] if len(same) == 1 else None
    if isinstance(value, str) and _spells_non_finite(value):
        raise EvaluationError("evaluation_non_finite", f"the metric '{name}' is not a finite number ({value[:40]!r})")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        shown = json.dumps(metrics)[:500]
        raise EvaluationError("evaluation_format_error", f"evaluation did not report the metric '{name}': {shown}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise EvaluationError(
            "evaluation_non_finite", f"the metric '{name}' is not a finite number ({str(value)[:40]})"
        )
    try:
        reward = normalise(task, number)
    except OverflowError:
        reward = math.inf
    if reward is not None and not math.isfinite(reward):
        raise EvaluationError(
            "evaluation_non_finite",
            f"the metric '{name}' = {number!r} is out of range: its gain over the baseline "
            f"({task.baseline_score!r}) is not a finite number",
        )
    return number


def _spells_non_finite(text: str) -> bool:
    """Whether a string is a non-finite number as Python or JavaScript would write it
    ("nan", "-inf", "Infinity"), which an evaluator may have written instead of a number."""
    try:
        return not math.isfinite(float(text.strip()))
    except (ValueError, OverflowError):
        return False


#: Statuses an evaluator may give a rejected submission in its `error` result.
REPORTABLE_STATUSES = ("evaluation_error", "submission_not_found", "evaluation_format_error", "evaluation_non_finite")


def _reported_status(metrics: dict[str, Any] | None) -> str:
    """The status of a failed run: the evaluator's own verdict (`"status"` beside `"error"`,
    say `evaluation_error` for a corrupt checkpoint) when it gives a known one, else
    evaluation_format_error (MLGym's catch-all)."""
    status = (metrics or {}).get("status")
    return status if "error" in (metrics or {}) and status in REPORTABLE_STATUSES else "evaluation_format_error"


def dataset_mounts(task: TaskSpec, host_workspace: Path, sandbox: str) -> list[Mount]:
    """The task's local datasets, read-only, where the sandbox's workspace sees them: inside an
    isolating sandbox at AGENT_WORKSPACE/<mount>, in the `local` one under the host folder."""
    inside = path_inside(sandbox, host_workspace, AGENT_WORKSPACE)
    return [
        Mount(task.dataset_path(ds), f"{inside}/{ds.mount_point}", read_only=True)
        for ds in task.datasets
        if ds.is_local
    ]


SECRETS_FILE = ".researchgym-secrets.json"


def write_secrets(folder: Path, token: str, seed: int) -> None:
    """The result token and the seed go to a file the evaluator reads and deletes (see
    _shared/isolation.py). Never the environment of a process that may run agent code."""
    path = folder / SECRETS_FILE
    path.unlink(missing_ok=True)  # an artefact of that name never stands in
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"token": token, "seed": seed}, handle)
