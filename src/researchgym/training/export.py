"""A run as training data: Hugging Face `datasets` parquet files.

* `sft`: one row per episode, `messages` in the standard chat format: the agent's system prompt
  and first user message exactly as sent, then each accepted model reply (assistant) and the
  observation it got back (user, as the environment returned it; the agent's observation
  template is not re-applied).
* `rl`: one row per step with a model reply: `prompt` (the messages before the reply),
  `completion` (the reply, as one assistant message) and `reward` (the step's reward as the
  environment gave it under the run's reward mode), with `step`, `done` and the episode's fields.

Every row carries task, model, agent, seed, exit_status, final_score and normalised_score;
filters choose episodes by task, model, exit status and minimum normalised score.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from researchgym.errors import ResearchGymError, UnknownNameError
from researchgym.extras import install_hint
from researchgym.runs.store import DB_NAME, Store
from researchgym.runs.trajectory import load_trajectory
from researchgym.tasks.registry import load_task
from researchgym.training.rewards import normalise

FORMATS = ("sft", "rl")


def _episodes(run_dir: Path) -> list[dict[str, Any]]:
    if not (run_dir / DB_NAME).is_file():
        raise ResearchGymError(f"{run_dir} has no {DB_NAME}: export reads run folders made by `researchgym run`")
    store = Store(run_dir)
    try:
        rows = store.episodes("finished")
    finally:
        store.close()
    root = run_dir.resolve()
    return [
        r
        for r in rows
        if r["trajectory"] and Path(r["trajectory"]).resolve().is_relative_to(root) and Path(r["trajectory"]).is_file()
    ]


def _normalised(task: str, score: float | None) -> float | None:
    try:
        return normalise(load_task(task), score)
    except UnknownNameError:
        return None


def episode_messages(path: Path) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """(messages of the whole episode, [(index of the reply in messages, step record)])."""
    messages: list[dict[str, str]] = []
    replies: list[dict[str, Any]] = []
    trajectory = load_trajectory(path)
    prompt = str((trajectory.reset or {}).get("prompt") or "")
    for record in trajectory.steps:
        if not messages:
            opening = record.get("opening_messages") or [{"role": "user", "content": prompt}]
            messages.extend({"role": m["role"], "content": str(m["content"])} for m in opening)
        turns = [t for t in record.get("model_turns") or [] if not t.get("format_error")]
        if turns:
            replies.append({"index": len(messages), "record": record})
            messages.append({"role": "assistant", "content": str(turns[-1].get("response", ""))})
        messages.append({"role": "user", "content": str(record.get("observation") or "")})
    return messages, replies


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    fmt: str = "sft",
    *,
    tasks: list[str] | None = None,
    models: list[str] | None = None,
    exit_statuses: list[str] | None = None,
    min_score: float | None = None,
) -> tuple[Path, int]:
    """Write `<out_dir>/<fmt>.parquet`; returns its path and the number of rows."""
    if fmt not in FORMATS:
        raise ResearchGymError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        import datasets
    except ImportError:
        raise ResearchGymError(f"export writes Hugging Face datasets: {install_hint('hub')}") from None
    rows: list[dict[str, Any]] = []
    for episode in _episodes(Path(run_dir)):
        model = episode["model"] or episode["agent"]
        normalised = _normalised(episode["task"], episode["final_score"])
        if (
            (tasks and episode["task"] not in tasks)
            or (models and model not in models)
            or (exit_statuses and episode["exit_status"] not in exit_statuses)
            or (min_score is not None and (normalised is None or normalised < min_score))
        ):
            continue
        fields = {
            "episode": episode["id"],
            "task": episode["task"],
            "model": model,
            "agent": episode["agent"],
            "seed": episode["seed"],
            "exit_status": episode["exit_status"],
            "final_score": episode["final_score"],
            "normalised_score": normalised,
        }
        messages, replies = episode_messages(Path(episode["trajectory"]))
        if fmt == "sft":
            if replies:
                rows.append({**fields, "messages": messages, "steps": episode["steps"]})
            continue
        for number, reply in enumerate(replies):
            record = reply["record"]
            rows.append(
                {
                    **fields,
                    "prompt": messages[: reply["index"]],
                    "completion": [messages[reply["index"]]],
                    "reward": float(record.get("reward") or 0.0),
                    "step": record.get("step"),
                    "done": number == len(replies) - 1 and bool(record.get("terminated") or record.get("truncated")),
                }
            )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{fmt}.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    return path, len(rows)
