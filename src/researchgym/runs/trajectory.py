"""Trajectories: one JSONL file per episode, one record appended and flushed per event.

Records are versioned (`v`) and typed (`type`): one `reset` (task, seed, prompt, limits), a
`step` per action (action, observation, timings, scores, and whatever the agent recorded with
its action: model replies, thought, model_stats), an `autosubmit` when a limit or an agent
failure ended the episode, and one `end` (exit status, final score, every score). The
`TrajectoryRecorder` is the only writer and writes `end` at most once; `load_trajectory` is the
reader the viewer, the report, export and replay share. A crash loses at most the record in
flight (a torn last line is skipped on reading).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

from researchgym.strict_json import strict_dumps

SCHEMA_VERSION = 1

RecordType = Literal["reset", "step", "autosubmit", "end"]


class ResetRecord(TypedDict, total=False):
    v: int
    time: float
    type: Literal["reset"]
    task: str
    gym_id: str
    seed: int
    sandbox: str
    episode: str
    prompt: str
    limits: dict[str, Any]
    options: dict[str, Any]
    run_info: dict[str, Any]
    research_tools: dict[str, Any] | None
    reward: str
    #: What rates the task's scores: {"metric", "direction", "baseline"} (TaskSpec.rating_facts;
    #: an imported run's are MLGym's, importers/mlgym_runs.py), so a report of trajectories alone
    #: rates a task loaded from a path, or since changed, as it was played.
    task_facts: dict[str, Any]
    #: Where the evaluator's result came from: "channel" (a file only the evaluator can write)
    #: or "stdout" (its printed output, which agent code it runs or unpickles could forge).
    result_via: Literal["channel", "stdout"]


class StepRecord(TypedDict, total=False):
    v: int
    time: float
    type: Literal["step"]
    step: int
    action: str
    observation: str
    exit_code: int | None
    timed_out: bool
    cwd: str
    command_s: float
    step_s: float
    cut_bytes: int
    reward: float
    terminated: bool
    truncated: bool
    scores: list[dict[str, Any]]
    # What the agent recorded with its action (agents/base.py: Action.record).
    model_turns: list[dict[str, Any]]
    thought: str
    model_stats: dict[str, Any]
    opening_messages: list[dict[str, Any]]
    #: Calls the agent's commands made to the host tools (memory, literature) during the step.
    tool_calls: list[dict[str, Any]]


class AutosubmitRecord(TypedDict, total=False):
    v: int
    time: float
    type: Literal["autosubmit"]
    reason: str
    observation: str
    reward: float
    scores: list[dict[str, Any]]
    model_turns: list[dict[str, Any]]
    model_stats: dict[str, Any]


class EndRecord(TypedDict, total=False):
    v: int
    time: float
    type: Literal["end"]
    exit_status: str | None
    steps: int
    final_score: float | None
    scores: list[dict[str, Any]]


class TrajectoryRecorder:
    """Writes one episode's records; each is flushed as it is written, and `end` goes once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        self.ended = False

    def reset(self, **fields: Any) -> None:
        self._write("reset", fields)

    def step(self, **fields: Any) -> None:
        self._write("step", fields)

    def autosubmit(self, **fields: Any) -> None:
        self._write("autosubmit", fields)

    def end(self, *, exit_status: str | None, steps: int, final_score: float | None, scores: list[Any]) -> None:
        if self.ended:
            return
        self.ended = True
        self._write("end", {"exit_status": exit_status, "steps": steps, "final_score": final_score, "scores": scores})

    def _write(self, kind: RecordType, fields: dict[str, Any]) -> None:
        # Fields first (an agent's record), then what the environment knows: the type wins.
        record = {"v": SCHEMA_VERSION, "time": time.time(), **fields, "type": kind}
        self._file.write(strict_dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


@dataclass
class Trajectory:
    """One episode's records, read back by type."""

    path: Path
    reset: ResetRecord | None = None
    steps: list[StepRecord] = field(default_factory=list)
    autosubmit: AutosubmitRecord | None = None
    end: EndRecord | None = None

    @property
    def finished(self) -> bool:
        return self.end is not None

    @property
    def model_stats(self) -> dict[str, Any]:
        """The agent's last reported model stats (running totals), {} if it reported none."""
        for record in [self.autosubmit, *reversed(self.steps)]:
            if record and record.get("model_stats"):
                return dict(record["model_stats"])
        return {}

    def step(self, number: int) -> StepRecord | None:
        return next((s for s in self.steps if s.get("step") == number), None)


def load_trajectory(path: str | Path) -> Trajectory:
    """Every record of a trajectory file, by type (unknown types, from a newer writer, are skipped)."""
    trajectory = Trajectory(Path(path))
    for record in read_trajectory(Path(path)):
        kind = record.get("type")
        if kind == "reset":
            trajectory.reset = record  # type: ignore[assignment]
        elif kind == "step":
            trajectory.steps.append(record)  # type: ignore[arg-type]
        elif kind == "autosubmit":
            trajectory.autosubmit = record  # type: ignore[assignment]
        elif kind == "end":
            trajectory.end = record  # type: ignore[assignment]
    return trajectory


def read_trajectory(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the raw records of a trajectory in order; a torn last line (from a crash) and any
    line that is not a JSON object are skipped."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record
