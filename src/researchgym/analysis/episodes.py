"""Episodes read back from trajectory files, with the numbers reports need.

Evaluation refuses a result holding NaN or an infinity (`evaluation_non_finite`) and the store
refuses to record one, but a run recorded before that, or imported from elsewhere, may still
hold them. The scores and costs the reports and the viewer summarise go through `finite_number`:
one that is not finite counts as missing (empty in tables, null in the viewer's JSON).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from researchgym.runs.trajectory import load_trajectory

EXIT_CATEGORIES = ("success", "max steps", "format", "cost", "context", "evaluation error", "API error", "runtime")
ACTION_CATEGORIES = ("edit", "view", "search", "validate", "submit", "python", "bash")
_ACTIONS = {
    "edit": "edit",
    "insert": "edit",
    "create": "edit",
    "open": "view",
    "goto": "view",
    "scroll_up": "view",
    "scroll_down": "view",
    "cat": "view",
    "head": "view",
    "tail": "view",
    "less": "view",
    "search_dir": "search",
    "search_file": "search",
    "find_file": "search",
    "grep": "search",
    "find": "search",
    "ls": "search",
    "validate": "validate",
    "submit": "submit",
    "python": "python",
    "python3": "python",
    "torchrun": "python",
    "accelerate": "python",
}


def finite_number(value: Any) -> float | None:
    """`value` as a float when it is a finite real number, else None (None, NaN, infinities,
    an integer beyond a float's range, booleans, strings)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


@dataclass
class Episode:
    path: Path
    task: str
    method: str
    seed: int | None
    exit_status: str | None
    final_score: float | None
    scores: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    model_stats: dict[str, Any] = field(default_factory=dict)
    #: The task's facts the episode recorded ({"metric", "direction", "baseline"}): an imported
    #: run's (MLGym's) take precedence over the task registry's in reports, and any rates a task
    #: the registry does not know (one loaded from a file) as it was played (summary.task_facts).
    task_facts: dict[str, Any] | None = None
    #: Where its scores' results came from ("channel" or "stdout"; None when the trajectory does
    #: not say: one written before researchgym recorded it).
    result_via: str | None = None

    def attempt_scores(self) -> list[float]:
        """Hidden-test scores of every scored artefact (validations and submissions); a NaN or an
        infinity an old or imported run recorded counts as unscored."""
        values = []
        for entry in self.scores:
            test = entry.get("test") or {}
            value = finite_number(test.get("value")) if isinstance(test, dict) else None
            if value is not None:
                values.append(value)
        return values

    @property
    def finite_final_score(self) -> float | None:
        """The final score, None when there is none or it is not a finite number."""
        return finite_number(self.final_score)

    @property
    def exit_category(self) -> str:
        return exit_category(self.exit_status)


def exit_category(status: str | None) -> str:
    status = status or ""
    if status == "submitted":
        return "success"
    if status.startswith("evaluation") or status == "submission_not_found":  # a submit that scored nothing
        return "evaluation error"
    for needle, category in (
        ("model_unavailable", "API error"),  # before what its auto-submission came to
        ("max_steps", "max steps"),
        ("format_error", "format"),
        ("cost_limit", "cost"),
        ("token_limit", "cost"),
        ("time_limit", "cost"),
        ("context", "context"),
        ("evaluation", "evaluation error"),
        ("submission_not_found", "evaluation error"),
        ("api_error", "API error"),
    ):
        if needle in status:
            return category
    return "runtime"


def action_category(action: str) -> str:
    words = action.strip().split()
    return _ACTIONS.get(words[0], "bash") if words else "bash"


def load_episodes(run_dir: str | Path) -> list[Episode]:
    """Every finished episode of a run: from its store when it has one, else from the
    trajectory files under `run_dir` (runs.layout.trajectory_files: in a run folder, only its
    trajectories, never what its agents wrote)."""
    from researchgym.runs.layout import trajectory_files
    from researchgym.runs.store import DB_NAME, Store

    if (Path(run_dir) / DB_NAME).is_file():
        return _from_store(Store(run_dir))
    episodes = []
    for path in trajectory_files(run_dir):
        trajectory = load_trajectory(path)
        reset, end = trajectory.reset, trajectory.end
        if reset is None or end is None:
            continue  # not a trajectory, or an episode still running
        actions = [step.get("action", "") for step in trajectory.steps]
        info = reset.get("run_info") or {}
        method = info.get("model") or info.get("agent") or "unknown"
        if method == "baseline":  # keep the name `baseline` for the task's configured baseline
            method = "baseline agent"
        episodes.append(
            Episode(
                path,
                reset["task"],
                method,
                reset.get("seed"),
                end.get("exit_status"),
                end.get("final_score"),
                end.get("scores") or [],
                actions,
                trajectory.model_stats,
                reset.get("task_facts"),
                result_via(reset),
            )
        )
    return episodes


def result_via(reset: Mapping[str, Any] | None) -> str | None:
    """Where an episode's scores came from, as its trajectory's reset line says: "channel",
    "stdout", or None (a line written before researchgym recorded it, or an unknown value)."""
    value = (reset or {}).get("result_via")
    return value if value in ("channel", "stdout") else None


def _from_store(store) -> list[Episode]:
    episodes = []
    facts = {
        run["id"]: run["config"].get("task_facts") or {} for run in store.runs() if isinstance(run["config"], dict)
    }
    for row in store.episodes("finished"):
        scores = store.score_entries(row["id"]).get(row["id"], [])
        actions, via, played = [], None, None
        if row["trajectory"] and Path(row["trajectory"]).is_file():
            trajectory = load_trajectory(row["trajectory"])
            actions = [step.get("action", "") for step in trajectory.steps]
            via = result_via(trajectory.reset)
            played = (trajectory.reset or {}).get("task_facts")
        method = row["model"] or row["agent"]
        if method == "baseline":
            method = "baseline agent"
        stats = {
            "total_cost": row["cost"] or 0.0,
            "cost_known": bool(row["cost_known"]),
            "tokens_sent": row["tokens_sent"] or 0,
            "tokens_received": row["tokens_received"] or 0,
        }
        episodes.append(
            Episode(
                Path(row["trajectory"] or "."),
                row["task"],
                method,
                row["seed"],
                row["exit_status"],
                row["final_score"],
                scores,
                actions,
                stats,
                facts.get(row["run_id"], {}).get(row["task"]) or played,
                via,
            )
        )
    return episodes
