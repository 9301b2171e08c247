"""MLGym's recorded runs (its `trajectories/` folder) imported into a researchgym run folder.

MLGym writes one folder per run, named `<model>__<task>__<config>__...__run_<N>`, holding
`<task>.traj` (JSON: `environment`, `trajectory` [{action, observation, response, thought, state,
execution_time}], `history`, `info` {model_stats, exit_status, submission, score}) and
`results.json` ({"agent": [one metrics dict per scored artefact, in order], "baseline": {...}}).
Every run becomes one finished episode of a new store at RUN_DIR (see runs/store.py):

* task: researchgym's built-in task id where MLGym's task has one (`TASKS` below; the mapping is
  kept in the run config under `mlgym_tasks`), else MLGym's own task id;
* agent `mlgym`, model = MLGym's model name without its `metagen-` gateway prefix (the method in
  reports), seed = the run index N;
* scores: every entry of results.json's `agent` list (else the trajectory's `info.score`), on the
  `test` split (MLGym's validate and submit both score on the test data), with the task's priority
  metric as value and every metric kept in the trajectory; entries are placed at the step whose
  observation printed them (`Evaluation Score: {...}`), the final submission at its `submit` step;
* final score: the priority metric of the last entry, MLGym's "last attempt";
* exit status (autosubmission reasons in researchgym's words, MLGym's own kept in the trajectory),
  cost, tokens, steps, and a trajectory JSONL in researchgym's format (reset, one step line per
  MLGym step with action, observation and thought, end) so `researchgym view` shows it.

Each task's metric direction and baseline (MLGym's baseline score from results.json) are stored
in the run config (`task_facts`) and in every trajectory's reset line, so reports rate the import
against MLGym's baselines, alone or beside a run of your own.

A missing or unreadable file never stops the import: it is reported in ImportReport.warnings. A
run with a readable results.json but no readable .traj keeps its scores (without steps, cost or
exit status); a run with neither is skipped. Re-importing skips episodes already in the store.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from researchgym.runs.layout import RunLayout, safe_name
from researchgym.runs.store import Store, episode_id
from researchgym.runs.trajectory import SCHEMA_VERSION

AGENT = "mlgym"
RUN_ID = "mlgym-import"
MODEL_PREFIXES = ("metagen-",)
#: MLGym task id -> (researchgym task id, priority metric, direction): the metric and direction
#: MLGym's published analysis ranks each MLGym-Bench task by.
TASKS: dict[str, tuple[str, str, str]] = {
    "regressionKaggleHousePrice": ("regressionKaggleHousePrice", "r2", "maximize"),
    "3SATTime": ("3SATTime", "Time", "minimize"),
    "imageClassificationCifar10": ("cifar10", "accuracy", "maximize"),
    "imageClassificationFMnist": ("imageClassificationFMnist", "accuracy", "maximize"),
    "imageCaptioningCOCO": ("coco-captioning", "BLEU Score", "maximize"),
    "languageModelingFineWeb": ("fineweb-lm", "val_loss", "minimize"),
    "naturalLanguageInferenceMNLI": ("mnli", "validation_accuracy", "maximize"),
    "battleOfSexes": ("battleOfSexes", "Score", "maximize"),
    "prisonersDilemma": ("prisonersDilemma", "Score", "maximize"),
    "blotto": ("blotto", "Score", "maximize"),
    "rlBreakoutMinAtar": ("rl-breakout-minatar", "Reward Mean", "maximize"),
    "rlMetaMazeMisc": ("rl-meta-maze", "Reward Mean", "maximize"),
    "rlMountainCarContinuous": ("rl-mountain-car-continuous", "Reward Mean", "maximize"),
}
_RUN_DIR = re.compile(r"^(?P<model>[^_].*?)__(?P<task>[^_][^/]*?)__(?P<rest>.+)$")
_RUN_INDEX = re.compile(r"_run_(\d+)$")
_EVAL_SCORE = re.compile(r"Evaluation Score: (\{[^{}]*\})")
_STATUS_WORDS = {
    "exit_format": "format_error",
    "exit_cost": "cost_limit",
    "exit_context": "context_exceeded",
    "exit_api": "api_error",
}
MAX_DEPTH = 4


@dataclass
class ImportReport:
    run_dir: Path
    imported: int = 0
    already_there: int = 0
    skipped: int = 0
    #: One line per file that was missing, unreadable or truncated, and what was done about it.
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Run:
    folder: Path
    model: str
    mlgym_task: str
    seed: int


# ----------------------------------------------------------------- finding runs
def find_runs(root: str | Path) -> list[_Run]:
    """MLGym run folders under `root` (the MLGym checkout, its trajectories/ or one set of them)."""
    root = Path(root)
    found = []
    base_depth = len(root.parts)
    for current, dirs, files in os.walk(root):
        here = Path(current)
        run = _parse(here) if here != root else None
        if run is not None and ("results.json" in files or any(f.endswith(".traj") for f in files)):
            found.append(run)
            dirs[:] = []
            continue
        if len(here.parts) - base_depth >= MAX_DEPTH:
            dirs[:] = []
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(found, key=lambda r: (r.mlgym_task, r.model, r.seed, str(r.folder)))


def _parse(folder: Path) -> _Run | None:
    match = _RUN_DIR.match(folder.name)
    if match is None:
        return None
    model = match["model"]
    for prefix in MODEL_PREFIXES:
        if model.startswith(prefix) and len(model) > len(prefix):
            model = model[len(prefix) :]
    index = _RUN_INDEX.search(match["rest"])
    return _Run(folder, model, match["task"], int(index.group(1)) if index else 0)


# ----------------------------------------------------------------- task facts
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _task_facts(mlgym_task: str, results: list[dict[str, Any]], warnings: list[str]) -> dict[str, Any]:
    """{"direction", "baseline", "metric", "mlgym_task"} for one task; `results` are its runs'
    readable results.json objects in folder order (MLGym's analysis takes the first baseline
    that has the priority metric)."""
    if mlgym_task in TASKS:
        task, metric, direction = TASKS[mlgym_task]
        _check_registry(task, metric, direction, warnings)
    else:
        task, metric, direction = mlgym_task, None, None
        for result in results:
            for entry in [result.get("baseline"), *(result.get("agent") or [])]:
                if isinstance(entry, dict) and entry and metric is None:
                    metric = next(iter(entry))
        try:
            from researchgym.tasks.registry import load_task

            spec = load_task(mlgym_task)
            task, direction = spec.id, spec.metric.direction
            metric = metric if metric is not None else spec.metric.name
        except Exception:  # noqa: BLE001 - an unknown task is imported all the same
            direction = "maximize"
            warnings.append(
                f"task {mlgym_task}: not an MLGym-Bench task known to researchgym; ranked by {metric!r}, maximised"
            )
    baseline = None
    for result in results:
        entry = result.get("baseline")
        if isinstance(entry, dict) and _number(entry.get(metric)) is not None:
            baseline = _number(entry[metric])
            break
    return {"task": task, "mlgym_task": mlgym_task, "metric": metric, "direction": direction, "baseline": baseline}


def _check_registry(task: str, metric: str, direction: str, warnings: list[str]) -> None:
    """Warn when researchgym's task of the same id ranks by another metric or direction (then a
    report beside a run of our own would compare different numbers)."""
    try:
        from researchgym.tasks.registry import load_task

        spec = load_task(task)
    except Exception:  # noqa: BLE001 - no such task here: the import carries its own facts
        return
    if (spec.metric.name, spec.metric.direction) != (metric, direction):
        warnings.append(
            f"task {task}: MLGym ranks by {metric!r} ({direction}), researchgym's task by "
            f"{spec.metric.name!r} ({spec.metric.direction}); reports use MLGym's"
        )


# ----------------------------------------------------------------- reading files
def _read_json(path: Path, what: str, warnings: list[str]) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        warnings.append(f"{path}: {what} is missing")
    except (OSError, ValueError) as exc:  # ValueError covers truncated JSON and bad UTF-8
        warnings.append(f"{path}: {what} is unreadable or truncated ({type(exc).__name__}: {str(exc)[:120]})")
    return None


def _read_run(run: _Run, warnings: list[str]) -> tuple[dict | None, dict | None]:
    results = _read_json(run.folder / "results.json", "results.json", warnings)
    if results is not None and not isinstance(results, dict):
        warnings.append(f"{run.folder / 'results.json'}: not a JSON object; ignored")
        results = None
    results_warning = len(warnings) - 1 if results is None else None
    trajs = sorted(run.folder.glob("*.traj"))
    traj = None
    if not trajs:
        warnings.append(f"{run.folder}: no .traj file (trajectory missing)")
    else:
        traj = _read_json(trajs[0], "the trajectory", warnings)
        if traj is not None and not isinstance(traj, dict):
            warnings.append(f"{trajs[0]}: not a JSON object; ignored")
            traj = None
    if traj is None and results is not None:
        warnings[-1] += "; its scores come from results.json (no steps, cost or exit status)"
    if results is None and traj is not None and results_warning is not None:
        warnings[results_warning] += "; scores taken from the trajectory's info.score"
    return results, traj


# ----------------------------------------------------------------- one run -> one episode
def _exit_status(status: Any) -> str:
    status = str(status or "").strip()
    if not status:
        return "unknown_error"
    match = re.fullmatch(r"autosubmission \((\w+)\)", status)
    if match:
        return f"autosubmission ({_STATUS_WORDS.get(match.group(1), match.group(1))})"
    return status


def _parse_scores(observation: str) -> dict[str, Any] | None:
    match = _EVAL_SCORE.search(observation or "")
    if match is None:
        return None
    try:
        value = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _score_entries(
    attempts: list[Any], steps: list[dict[str, Any]], metric: str | None, exit_status: str
) -> list[dict[str, Any]]:
    """One entry per scored artefact, at the step whose observation printed it; the last entry, when
    no observation printed it, at the final `submit` step; any other (every entry when there are
    no steps) after the last step."""
    placed: list[int | None] = [None] * len(attempts)
    next_attempt = 0
    for index, step in enumerate(steps, start=1):
        if next_attempt >= len(attempts):
            break
        shown = _parse_scores(step.get("observation") or "")
        if shown is None:
            continue
        wanted = attempts[next_attempt] if isinstance(attempts[next_attempt], dict) else {}
        if metric is not None and shown.get(metric) != wanted.get(metric):
            continue  # printed but not recorded (MLGym keeps only scores it could read)
        placed[next_attempt] = index
        next_attempt += 1
    entries, after = [], len(steps) + 1
    submit_step = None  # the final `submit` action, when it is the last step and printed no score
    if steps and str(steps[-1].get("action") or "").strip().startswith("submit") and len(steps) not in placed:
        submit_step = len(steps)
    for index, attempt in enumerate(attempts):
        last = index == len(attempts) - 1
        at = placed[index]
        kind = "validate"
        if at is None and last and submit_step is not None:
            at = submit_step
        if at is None:
            at, after = after, after + 1
        if placed[index] is None and last:
            if exit_status == "submitted":
                kind = "submit"
            elif exit_status.startswith("autosubmission"):
                kind = "autosubmit"
        metrics = attempt if isinstance(attempt, dict) else {}
        value = _number(metrics.get(metric)) if metric is not None else None
        entry: dict[str, Any] = {"step": at, "kind": kind}
        if value is None:
            entry["status"] = "metric_missing"
            entry["metrics"] = metrics
        else:
            entry["test"] = {"split": "test", "metrics": metrics, "value": value}
        entries.append(entry)
    return entries


def _final_score(attempts: list[Any], metric: str | None) -> float | None:
    """MLGym's last attempt: the last entry's priority metric, when the run scored any entry."""
    if metric is None or not attempts:
        return None
    if not any(isinstance(a, dict) and _number(a.get(metric)) is not None for a in attempts):
        return None
    last = attempts[-1]
    return _number(last.get(metric)) if isinstance(last, dict) else None


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) else None


def _prompt(traj: dict[str, Any]) -> str | None:
    for message in traj.get("history") or []:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content, default=str)
    return None


def _write_trajectory(path: Path, records: list[dict[str, Any]]) -> None:
    """The whole file at once (a temporary name renamed into place), so a crash leaves none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({"v": SCHEMA_VERSION, **record}, ensure_ascii=False, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _dict_at(record: dict | None, key: str) -> dict[str, Any]:
    """record[key] when it is a dict (MLGym's files are read as found: anything else counts as absent)."""
    value = record.get(key) if record is not None else None
    return value if isinstance(value, dict) else {}


def _list_at(record: dict | None, key: str) -> list[Any]:
    value = record.get(key) if record is not None else None
    return value if isinstance(value, list) else []


def _episode(
    run: _Run, facts: dict[str, Any], results: dict | None, traj: dict | None, run_dir: Path, warnings: list[str]
) -> tuple[str, dict[str, Any]]:
    task, metric = facts["task"], facts["metric"]
    info = _dict_at(traj, "info")
    attempts: list[Any]
    if results is not None and isinstance(results.get("agent"), list):
        attempts = results["agent"]
    else:
        attempts = _list_at(info, "score")
        if results is not None:
            warnings.append(f"{run.folder / 'results.json'}: no `agent` list; scores taken from the trajectory")
    steps = [s for s in _list_at(traj, "trajectory") if isinstance(s, dict)]
    mlgym_status = info.get("exit_status") if traj is not None else None
    exit_status = _exit_status(mlgym_status) if traj is not None else "unknown (trajectory missing)"
    scores = _score_entries(attempts, steps, metric, exit_status)
    final_score = _final_score(attempts, metric)
    stats = _dict_at(info, "model_stats")
    model_stats = {
        "total_cost": _number(stats.get("total_cost")) or 0.0,
        "cost_known": bool(stats),
        "tokens_sent": int(_number(stats.get("tokens_sent")) or 0),
        "tokens_received": int(_number(stats.get("tokens_received")) or 0),
        "api_calls": int(_number(stats.get("api_calls")) or 0),
    }
    eid = episode_id(task, AGENT, run.model, run.seed)
    path = RunLayout(run_dir).trajectories(eid) / f"{safe_name(run.mlgym_task)}.jsonl"
    by_step: dict[int, list[dict[str, Any]]] = {}
    for entry in scores:
        by_step.setdefault(entry["step"], []).append(entry)
    task_facts = {k: facts[k] for k in ("direction", "baseline", "metric", "mlgym_task")}
    records: list[dict[str, Any]] = [
        {
            "type": "reset",
            "task": task,
            "seed": run.seed,
            "prompt": _prompt(traj) if traj is not None else None,
            "run_info": {"agent": AGENT, "model": run.model},
            "task_facts": task_facts,
            "result_via": "stdout",  # MLGym's evaluate.py printed these scores
            "source": {"framework": "mlgym", "folder": str(run.folder), "environment": (traj or {}).get("environment")},
        }
    ]
    duration = 0.0
    for index, step in enumerate(steps, start=1):
        seconds = _seconds(step.get("execution_time"))
        duration += seconds or 0.0
        records.append(
            {
                "type": "step",
                "step": index,
                "action": step.get("action"),
                "observation": step.get("observation"),
                "thought": step.get("thought"),
                "response": step.get("response"),
                "state": step.get("state"),
                "step_s": seconds,
                "scores": by_step.get(index, []),
            }
        )
    records.append(
        {
            "type": "end",
            "exit_status": exit_status,
            "mlgym_exit_status": mlgym_status,
            "steps": len(steps),
            "final_score": final_score,
            "scores": scores,
            "model_stats": model_stats,
            "submission": info.get("submission"),
        }
    )
    _write_trajectory(path, records)
    result = {
        "exit_status": exit_status,
        "final_score": final_score,
        "steps": len(steps),
        "duration_s": duration if steps else None,
        "model_stats": model_stats,
        "trajectory": str(path),
        "scores": scores,
        "error": None if traj is not None else "MLGym trajectory missing or unreadable: scores from results.json",
    }
    return eid, result


# ----------------------------------------------------------------- the import
def import_mlgym(source: str | Path, run_dir: str | Path) -> ImportReport:
    """Import every MLGym run under `source` into the run folder `run_dir` (created if needed).
    Episodes already finished in its store are left as they are."""
    source, run_dir = Path(source), Path(run_dir).resolve()
    report = ImportReport(run_dir)
    if not source.is_dir():
        report.warnings.append(f"{source}: not a folder; nothing imported")
        return report
    runs = find_runs(source)
    if not runs:
        report.warnings.append(f"{source}: no MLGym run folder (<model>__<task>__...__run_<N>) found")
        return report
    store = Store(run_dir)
    try:
        done = {row["id"] for row in store.episodes("finished")}
        read: dict[str, tuple[dict | None, dict | None]] = {}
        by_task: dict[str, list[_Run]] = {}
        for run in runs:
            by_task.setdefault(run.mlgym_task, []).append(run)
        facts: dict[str, dict[str, Any]] = {}
        for mlgym_task, task_runs in by_task.items():
            task_results: list[dict[str, Any]] = []
            for run in task_runs:
                read[str(run.folder)] = found = _read_run(run, report.warnings)
                if found[0] is not None:
                    task_results.append(found[0])
            facts[mlgym_task] = _task_facts(mlgym_task, task_results, report.warnings)
        _save_config(store, source, facts)
        seen: set[str] = set()
        for run in runs:
            task_facts = facts[run.mlgym_task]
            eid = episode_id(task_facts["task"], AGENT, run.model, run.seed)
            if eid in seen:
                report.warnings.append(f"{run.folder}: a second folder for episode {eid}; skipped")
                report.skipped += 1
                continue
            seen.add(eid)
            if eid in done:
                report.already_there += 1
                continue
            results, traj = read[str(run.folder)]
            if results is None and traj is None:
                report.warnings.append(f"{run.folder}: neither results.json nor a trajectory could be read; skipped")
                report.skipped += 1
                continue
            eid, result = _episode(run, task_facts, results, traj, run_dir, report.warnings)
            store.plan(RUN_ID, [(task_facts["task"], AGENT, run.model, run.seed)])
            store.record(eid, result, task_facts["metric"] or "score")
            report.imported += 1
    finally:
        store.close()
    return report


def _save_config(store: Store, source: Path, facts: dict[str, dict[str, Any]]) -> None:
    """The run's config: where it came from and each task's facts (merged with an earlier import's)."""
    existing = next((r["config"] for r in store.runs() if r["id"] == RUN_ID), None)
    config = existing if isinstance(existing, dict) else {}
    sources = config.get("imported_from") or []
    if str(source.resolve()) not in sources:
        sources.append(str(source.resolve()))
    config.update({"source": "mlgym", "agent": AGENT, "imported_from": sources})
    config.setdefault("task_facts", {})
    config.setdefault("mlgym_tasks", {})
    for task_facts in facts.values():
        task = task_facts["task"]
        config["task_facts"][task] = {k: task_facts[k] for k in ("direction", "baseline", "metric", "mlgym_task")}
        config["mlgym_tasks"][task] = task_facts["mlgym_task"]
    store.add_run(RUN_ID, config)
    with store.transaction() as db:
        db.execute("UPDATE runs SET config=? WHERE id=?", (json.dumps(config), RUN_ID))


# ----------------------------------------------------------------- AUP as MLGym's paper computes it
def mlgym_aup(
    run_dir: str | Path, models: list[str] | None = None, *, with_trajectory_only: bool = False
) -> dict[str, Any]:
    """Per-model best-attempt and best-submission AUP of an imported run (or an import merged with
    other runs: a folder holding them), aggregated as MLGym's published analysis does:

    * per run: best attempt = best priority-metric value among all its scored entries (every
      validate and the submission), last attempt = the last entry's value (a run with no entry
      carrying the metric counts for nothing);
    * per task and model: best attempt = best of its runs' best attempts; best submission = best of
      its runs' last attempts;
    * the baseline (MLGym's, from results.json) is a method; AUP over the best-attempt and
      best-submission tables together (researchgym.metrics.compute_aup).

    `models` keeps only those methods (AUP depends on which methods are compared: the published
    table has 12 models). `with_trajectory_only` drops runs imported without a readable .traj.
    Returns {"aup": {"best attempt": {m: AUP}, "best submission": {...}}, "best": table,
    "last": table, "directions", "baselines", "episodes": count}."""
    from researchgym.analysis.episodes import load_episodes
    from researchgym.analysis.summary import summarize

    episodes = load_episodes(run_dir)
    if models is not None:
        keep = set(models)
        episodes = [e for e in episodes if e.method in keep]
    if with_trajectory_only:
        episodes = [e for e in episodes if _has_steps(e)]
    summary = summarize(episodes)
    return {
        "aup": summary.aup,
        "best": summary.best,
        "last": summary.last,
        "directions": summary.directions,
        "baselines": summary.baselines,
        "episodes": len(episodes),
    }


def _has_steps(episode: Any) -> bool:
    return bool(episode.actions) or episode.exit_status != "unknown (trajectory missing)"
