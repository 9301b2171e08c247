"""What the viewer shows, read from a run folder: its SQLite store (when it has one) and its
trajectory files. Read-only, and re-read on every request so a running run shows new steps.

Episodes are addressed by key only (the episode id made URL-safe, as the runner names its
folders): the key maps to a trajectory through an index built here from the store and the
folder's own files, and a path that resolves outside the run folder is never read. Long observations
are cut for the page; the full text has its own request.

ML-Bench judgments (the store's `mlbench` table) are shown too: the summary of
analysis/mlbench.py, the list of judged answers, and one answer's full record, addressed by
`answer_key` (URL-safe, made from the row's primary key), never by a path.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from researchgym.analysis.episodes import Episode, exit_category, finite_number, result_via
from researchgym.analysis.mlbench import answer_key, parse_detail, run_modes, to_answer
from researchgym.analysis.mlbench import summarize as summarize_mlbench
from researchgym.analysis.summary import summarize
from researchgym.runs.layout import RunLayout, safe_name, trajectory_files
from researchgym.runs.store import DB_NAME, Store
from researchgym.runs.trajectory import StepRecord, load_trajectory, read_trajectory

PAGE_OBSERVATION_CHARS = 20_000
PAGE_TEXT_CHARS = 50_000


class NotFound(Exception):
    """No such episode or step in this run."""


def _total(turns: list[dict[str, Any]], key: str, kind: type[int] | type[float] = float) -> int | float | None:
    """The sum of a number over a step's model turns, a missing, non-numeric or non-finite one
    (an old or imported trajectory's NaN) counting as 0; None when the sum overflows."""
    total = finite_number(sum(finite_number(turn.get(key)) or 0.0 for turn in turns if isinstance(turn, dict)))
    return None if total is None else kind(total)


def _cut(text: Any, limit: int) -> tuple[str, int]:
    text = "" if text is None else str(text)
    return text[:limit], len(text)


class RunData:
    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir).resolve()
        if not self.run_dir.is_dir():
            raise FileNotFoundError(f"{run_dir} is not a folder")
        #: What each trajectory's reset line records (written once, so read once): where its
        #: scores came from (`result_via`) and the facts that rate its task (`task_facts`).
        self._recorded: dict[Path, tuple[str | None, dict[str, Any] | None]] = {}

    # ------------------------------------------------------------------ index
    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self.run_dir) and path.is_file()
        except OSError:
            return False

    def _rows(self) -> list[dict[str, Any]]:
        """One row per episode: the store's (every status), else one per trajectory file."""
        if (self.run_dir / DB_NAME).is_file():
            store = Store(self.run_dir)
            try:
                rows = store.episodes()
                scores = store.score_entries()
                # Baselines and directions a run carries (an imported MLGym run: MLGym's own).
                facts = {
                    run["id"]: run["config"].get("task_facts") or {}
                    for run in store.runs()
                    if isinstance(run["config"], dict)
                }
            finally:
                store.close()
            for row in rows:
                row["task_facts"] = facts.get(row["run_id"], {}).get(row["task"])
                path = Path(row["trajectory"]) if row.get("trajectory") else None
                if path is None or not self._inside(path):
                    found = sorted(RunLayout(self.run_dir).trajectories(row["id"]).glob("*.jsonl"))
                    path = found[-1] if found else None
                row["path"] = path if path is not None and self._inside(path) else None
                row["scores"] = scores.get(row["id"], [])
            return rows
        rows = []
        for path in trajectory_files(self.run_dir):
            if not self._inside(path):
                continue
            head = self._head(path)
            if head is None:
                continue
            info = head.get("run_info") or {}
            rows.append(
                {
                    "id": str(path.relative_to(self.run_dir).with_suffix("")),
                    "task": head.get("task"),
                    "agent": info.get("agent"),
                    "model": info.get("model"),
                    "seed": head.get("seed"),
                    "status": None,
                    "path": path,
                    "task_facts": head.get("task_facts"),
                }
            )
        return rows

    def _recorded_head(self, path: Path | None) -> tuple[str | None, dict[str, Any] | None]:
        """A finished episode's `result_via` and `task_facts`, as its trajectory's reset line says."""
        if path is None:
            return None, None
        if path not in self._recorded:
            head = self._head(path)
            facts = (head or {}).get("task_facts")
            self._recorded[path] = (result_via(head), facts if isinstance(facts, dict) else None)
        return self._recorded[path]

    @staticmethod
    def _head(path: Path) -> dict[str, Any] | None:
        for record in read_trajectory(path):
            return record if record.get("type") == "reset" else None
        return None

    def _episode_rows(self) -> dict[str, dict[str, Any]]:
        return {safe_name(row["id"]): row for row in self._rows()}

    # ------------------------------------------------------------- overview
    def overview(self) -> dict[str, Any]:
        episodes, finished = [], []
        for row in self._rows():
            summary = self._summary(row)
            episodes.append(summary)
            if summary["status"] == "finished":
                via, played = self._recorded_head(row.get("path"))
                finished.append(
                    Episode(
                        row["path"] or Path("."),
                        summary["task"],
                        summary["method"],
                        summary["seed"],
                        summary["exit_status"],
                        summary["final_score"],
                        summary["scores"],
                        [],
                        {"total_cost": summary["cost"] or 0.0},
                        row.get("task_facts") or played,
                        via,
                    )
                )
        result: dict[str, Any] = {
            "run": self.run_dir.name,
            "episodes": episodes,
            "config": self._config(),
            "mlbench_answers": len(self._mlbench()[0]),
        }
        if finished:
            digest = summarize(finished)
            result["summary"] = {
                "tasks": digest.tasks,
                "methods": digest.methods,
                "directions": digest.directions,
                "baselines": digest.baselines,
                "best_attempt": digest.best,
                "best_submission": digest.last,
                "aup": digest.aup,
                "costs": digest.costs,
                "exits": {m: dict(c) for m, c in digest.exits.items()},
                "stdout_scored": digest.stdout_scored,
            }
        return result

    def _config(self) -> dict[str, Any] | None:
        path = RunLayout(self.run_dir).run_file
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except ValueError:
            return None

    def _summary(self, row: dict[str, Any]) -> dict[str, Any]:
        """An episode's line in the overview, from its trajectory (fresher than the store)."""
        method = row.get("model") or row.get("agent") or "unknown"
        summary: dict[str, Any] = {
            "id": row["id"],
            "key": safe_name(row["id"]),
            "task": row.get("task"),
            "method": "baseline agent" if method == "baseline" else method,
            "seed": row.get("seed"),
            "status": row.get("status"),
            "exit_status": row.get("exit_status"),
            "final_score": row.get("final_score"),
            "steps": row.get("steps") or 0,
            "cost": row.get("cost"),
            "tokens_sent": row.get("tokens_sent"),
            "tokens_received": row.get("tokens_received"),
            "error": row.get("error"),
            "scores": row.get("scores") or [],
            "has_trajectory": row.get("path") is not None,
        }
        path = row.get("path")
        if path is not None and row.get("status") != "finished":  # a finished one: the store has it all
            trajectory = load_trajectory(path)
            if trajectory.reset is not None:
                info = trajectory.reset.get("run_info") or {}
                summary["task"] = summary["task"] or trajectory.reset.get("task")
                if summary["method"] == "unknown":
                    summary["method"] = info.get("model") or info.get("agent") or "unknown"
            stats = trajectory.model_stats
            if stats:
                summary["cost"] = stats.get("total_cost", summary["cost"])
                summary["tokens_sent"] = stats.get("tokens_sent", summary["tokens_sent"])
                summary["tokens_received"] = stats.get("tokens_received", summary["tokens_received"])
            if trajectory.end is not None:
                summary.update(
                    exit_status=trajectory.end.get("exit_status"),
                    final_score=trajectory.end.get("final_score"),
                    scores=trajectory.end.get("scores") or [],
                )
                summary["status"] = summary["status"] or "finished"
            steps = max((s.get("step", 0) for s in trajectory.steps), default=len(trajectory.steps))
            summary["steps"] = max(steps, summary["steps"])
            summary["status"] = summary["status"] or "running"
        summary["status"] = summary["status"] or "planned"
        summary["exit_category"] = exit_category(summary["exit_status"]) if summary["exit_status"] else None
        return summary

    # -------------------------------------------------------------- episodes
    def _path(self, key: str) -> tuple[dict[str, Any], Path]:
        row = self._episode_rows().get(key)
        if row is None:
            raise NotFound(f"no episode {key!r} in this run")
        if row.get("path") is None:
            raise NotFound(f"episode {row['id']!r} has no trajectory yet")
        return row, row["path"]

    def episode(self, key: str) -> dict[str, Any]:
        """One episode by its key (the `key` of its overview entry)."""
        row, path = self._path(key)
        result: dict[str, Any] = {
            "id": row["id"],
            "key": key,
            "summary": self._summary(row),
            "steps": [],
            "reset": None,
            "end": None,
            "autosubmit": None,
        }
        trajectory = load_trajectory(path)
        if (reset := trajectory.reset) is not None:
            prompt, prompt_chars = _cut(reset.get("prompt"), PAGE_TEXT_CHARS)
            result["reset"] = {
                "task": reset.get("task"),
                "seed": reset.get("seed"),
                "prompt": prompt,
                "prompt_chars": prompt_chars,
                "limits": reset.get("limits"),
                "run_info": reset.get("run_info"),
                "sandbox": reset.get("sandbox"),
            }
        result["steps"] = [self._step(record) for record in trajectory.steps]
        if (autosubmit := trajectory.autosubmit) is not None:
            observation, chars = _cut(autosubmit.get("observation"), PAGE_OBSERVATION_CHARS)
            result["autosubmit"] = {
                "reason": autosubmit.get("reason"),
                "observation": observation,
                "observation_chars": chars,
            }
        if (end := trajectory.end) is not None:
            result["end"] = {
                "exit_status": end.get("exit_status"),
                "final_score": end.get("final_score"),
                "steps": end.get("steps"),
                "scores": end.get("scores"),
            }
        return result

    @staticmethod
    def _step(record: StepRecord) -> dict[str, Any]:
        observation, chars = _cut(record.get("observation"), PAGE_OBSERVATION_CHARS)
        turns = record.get("model_turns") or []
        thought, _ = _cut(record.get("thought"), PAGE_TEXT_CHARS)
        return {
            "step": record.get("step"),
            "action": _cut(record.get("action"), PAGE_TEXT_CHARS)[0],
            "thought": thought,
            "observation": observation,
            "observation_chars": chars,
            "exit_code": record.get("exit_code"),
            "timed_out": record.get("timed_out"),
            "step_s": record.get("step_s"),
            "cwd": record.get("cwd"),
            "scores": record.get("scores") or [],
            "input_tokens": _total(turns, "input_tokens", int),
            "output_tokens": _total(turns, "output_tokens", int),
            "cost": _total(turns, "cost"),
            "format_errors": [t["format_error"] for t in turns if t.get("format_error")],
            "model_stats": record.get("model_stats"),
            "tool_calls": record.get("tool_calls") or [],
        }

    def observation(self, key: str, step: int) -> str:
        """The full observation of one step."""
        row, path = self._path(key)
        record = load_trajectory(path).step(step)
        if record is not None:
            return str(record.get("observation") or "")
        raise NotFound(f"episode {row['id']!r} has no step {step}")

    # --------------------------------------------------------------- ML-Bench
    def _mlbench(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The store's ML-Bench rows and its runs ([] and [] without a store)."""
        if not (self.run_dir / DB_NAME).is_file():
            return [], []
        store = Store(self.run_dir)
        try:
            return store.mlbench_rows(), store.runs()
        finally:
            store.close()

    def mlbench_summary(self) -> dict[str, Any]:
        """pass@k, per repository and failed checks per setting, model and judge (None: no rows)."""
        rows, runs = self._mlbench()
        return {
            "run": self.run_dir.name,
            "answers": len(rows),
            "summary": summarize_mlbench(rows, runs).to_dict() if rows else None,
        }

    def mlbench_answers(self) -> list[dict[str, Any]]:
        """Every judged answer, without its code and reply: the list's rows."""
        rows, runs = self._mlbench()
        if not rows:
            return []
        return [asdict(answer) for answer in summarize_mlbench(rows, runs).answers]

    def mlbench_answer(self, key: str) -> dict[str, Any]:
        """One judged answer by its key: the list's fields, the code, the reply and the judge's
        details (each check's verdict and message, what the program parsed, the judge mode)."""
        rows, runs = self._mlbench()
        for row in rows:
            if answer_key(row) == key:
                return self._record(row, run_modes(runs))
        raise NotFound(f"no ML-Bench answer {key!r} in this run")

    def mlbench_records(self) -> dict[str, dict[str, Any]]:
        """Every answer's full record by key, from one read of the store (the exported bundle)."""
        rows, runs = self._mlbench()
        modes = run_modes(runs)
        return {answer_key(row): self._record(row, modes) for row in rows}

    @staticmethod
    def _record(row: dict[str, Any], modes: dict[str, str]) -> dict[str, Any]:
        detail = parse_detail(row)
        checks = {
            name: detail[name]
            if isinstance(detail.get(name), dict)
            else {"passed": bool(row[f"{name}_ok"]), "detail": ""}
            for name in ("arguments", "type", "execution")
        }
        return {
            **asdict(to_answer(row, modes)),
            "code": row.get("code"),
            "reply": row.get("reply"),
            "checks": checks,
            "detail": detail,
            "created": row.get("created"),
        }
