"""Scoring a submission in a fresh sandbox that the agent never touched.

The artefact is copied out of the workspace (paths outside it are refused), the task's
evaluation files are copied beside it (they win over anything the agent wrote with the same
name), the datasets are mounted read-only with the hidden files this split may use (test
labels are withheld while validating), and the evaluation command runs with that folder as its working directory. Its metrics are the last line of its
output that is a JSON object, so stray prints and warnings do not break scoring.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from researchgym.errors import EvaluationError, SandboxError
from researchgym.hardware import sandbox_devices
from researchgym.sandbox import AGENT_WORKSPACE, Limits, Mount, SandboxSpec, create_sandbox
from researchgym.tasks.spec import TaskSpec


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


def last_json_object(text: str, token: str | None = None) -> dict[str, Any] | None:
    """The metrics line: the last JSON object carrying `token` if any line carries one, else
    the last JSON object. Evaluators that run agent code print the token (from the
    secrets file, see write_secrets, which they delete before running that code), so a
    line forged by the agent's code cannot pass for the result."""
    objects = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                objects.append(value)
    if token is not None and any("token" in obj for obj in objects):
        signed = [obj for obj in objects if obj.get("token") == token]
        if not signed:
            return None
        return {k: v for k, v in signed[-1].items() if k != "token"}
    return objects[-1] if objects else None


def _copy_inside(source: Path, target: Path, root: Path, seen: set[Path] | None = None) -> None:
    """Copy a file or folder, following symlinks only while they stay inside `root`."""
    seen = set() if seen is None else seen
    resolved = source.resolve()
    if not resolved.is_relative_to(root):
        raise EvaluationError("submission_not_found", f"{source} points outside the workspace ({resolved})")
    target.parent.mkdir(parents=True, exist_ok=True)
    if resolved.is_dir():
        if resolved in seen:  # a symlink loop
            return
        seen.add(resolved)
        target.mkdir(exist_ok=True)
        for child in resolved.iterdir():
            _copy_inside(child, target / child.name, root, seen)
    else:
        shutil.copyfile(resolved, target)


def collect_artefact(task: TaskSpec, workspace: Path, destination: Path) -> list[str]:
    """Copy the submission artefact from the workspace; raise if any part is missing."""
    root = workspace.resolve()
    mounts = {ds.mount_point.strip("/").split("/")[0] for ds in task.datasets}
    names = task.submission.artefacts or [
        p.name for p in sorted(root.iterdir()) if p.name not in mounts and not p.is_symlink()
    ]
    for name in names:
        source = root / name
        if not source.exists():
            raise EvaluationError(
                "submission_not_found",
                f"the submission artefact '{name}' was not found in the workspace (expected at {name}, "
                "relative to the workspace root)",
            )
        _copy_inside(source, destination / name, root)
    return names


def _is_within(path: Path, folders: list[Path]) -> bool:
    return any(path == folder or path.is_relative_to(folder) for folder in folders)


def place_evaluation_files(task: TaskSpec, folder: Path, withheld: list[Path]) -> None:
    """Copy the task's evaluation files next to the artefact; they replace anything the agent
    put there under the same name. Hidden files withheld for this split are left out."""
    for item in task.evaluation.files:
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
            shutil.copytree(source, target, ignore=lambda d, names: [
                n for n in names if _is_within(Path(d, n).resolve(), withheld)
            ])
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
    """Score the artefact now in `workspace` on `split`. Raises EvaluationError with a status."""
    started = time.perf_counter()
    withheld = task.withheld_paths(split)
    with tempfile.TemporaryDirectory(prefix="researchgym-eval-") as tmp:
        folder = Path(tmp) / "workspace"
        folder.mkdir()
        try:
            collect_artefact(task, workspace, folder)
            place_evaluation_files(task, folder, withheld)
        except OSError as exc:
            raise EvaluationError("evaluation_error", f"could not prepare the evaluation folder: {exc}") from exc
        token = secrets.token_hex(16)
        write_secrets(folder, token, seed)
        box = create_sandbox(sandbox, _eval_spec(task, folder, split, sandbox, withheld))
        command = task.evaluation.command.replace("{split}", split).replace("{seed}", str(seed))
        try:
            box.start()
            result = box.run(command, timeout_s=task.evaluation.timeout_s)
        except SandboxError as exc:
            raise EvaluationError("evaluation_error", f"the evaluation sandbox failed: {exc}") from exc
        finally:
            box.close()
    tail = result.output[-4000:].replace(token, "<result-token>")
    duration = time.perf_counter() - started
    if result.timed_out:
        raise EvaluationError("evaluation_timeout", f"evaluation took longer than {task.evaluation.timeout_s:g}s", tail)
    metrics = last_json_object(result.output, token)
    if result.exit_code != 0 or metrics is None or "error" in metrics:
        reason = metrics.get("error") if metrics else None
        raise EvaluationError(
            _reported_status(metrics),
            f"evaluation failed (exit code {result.exit_code}): {reason or 'no JSON metrics line'}",
            tail,
        )
    value = metrics.get(task.metric.name)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise EvaluationError(
            "evaluation_format_error", f"evaluation did not report the metric '{task.metric.name}': {metrics}"
        )
    return Score(split=split, metrics=metrics, value=float(value), duration_s=duration, output_tail=tail)


#: Statuses an evaluator may give a rejected submission in its signed `error` line.
REPORTABLE_STATUSES = ("evaluation_error", "submission_not_found", "evaluation_format_error")


def _reported_status(metrics: dict[str, Any] | None) -> str:
    """The status of a failed run: the evaluator's own verdict (`"status"` beside `"error"`,
    say `evaluation_error` for a corrupt checkpoint) when it gives a known one, else
    evaluation_format_error (MLGym's catch-all)."""
    status = (metrics or {}).get("status")
    return status if "error" in (metrics or {}) and status in REPORTABLE_STATUSES else "evaluation_format_error"


def dataset_mounts(task: TaskSpec, host_workspace: Path, sandbox: str) -> list[Mount]:
    """The task's local datasets, read-only, where the sandbox's workspace sees them: inside an
    isolating sandbox at AGENT_WORKSPACE/<mount>, in the `local` one under the host folder."""
    inside = str(host_workspace) if sandbox == "local" else AGENT_WORKSPACE
    return [Mount(task.dataset_path(ds), f"{inside}/{ds.mount_point}", read_only=True)
            for ds in task.datasets if ds.is_local]


SECRETS_FILE = ".researchgym-secrets.json"


def write_secrets(folder: Path, token: str, seed: int) -> None:
    """The result token and the seed go to a file the evaluator reads and deletes before it runs
    any agent code. Never the environment: every process of the sandbox, the agent's code too,
    can read the shell's /proc/<pid>/environ."""
    path = folder / SECRETS_FILE
    path.unlink(missing_ok=True)  # an artefact of that name never stands in
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"token": token, "seed": seed}, handle)


def _eval_spec(task: TaskSpec, folder: Path, split: str, sandbox: str, withheld: list[Path]) -> SandboxSpec:
    limits = task.limits
    inside = str(folder) if sandbox == "local" else AGENT_WORKSPACE
    return SandboxSpec(
        workspace=folder,
        mounts=dataset_mounts(task, folder, sandbox),
        hidden=withheld,
        env={"RESEARCHGYM_SPLIT": split, "RESEARCHGYM_SECRETS_FILE": f"{inside}/{SECRETS_FILE}"},
        devices=sandbox_devices() if task.requires.gpus else [],
        limits=Limits(
            memory_mb=limits.memory_mb,
            cpus=limits.cpus,
            max_processes=limits.max_processes,
            max_file_size_mb=limits.max_file_size_mb,
            command_timeout_s=task.evaluation.timeout_s,
            max_output_chars=200_000,
        ),
    )
