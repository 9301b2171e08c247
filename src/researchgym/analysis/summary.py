"""The numbers a run is judged by, computed once for the report and the viewer: per task and
method the best attempt and best submission beside the baseline, AUP of both, ranks, costs and
exit categories. A score, baseline or cost that is NaN or infinite (a run recorded before
evaluation refused them, or imported) counts as missing, so every number here is finite."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from researchgym.analysis.episodes import Episode, finite_number
from researchgym.errors import UnknownNameError
from researchgym.metrics import borda, compute_aup, mean_ranks
from researchgym.tasks.registry import load_task

Table = dict[str, dict[str, float | None]]


def episode_cost(episode: Episode) -> float:
    """What an episode's model calls cost; 0 when unknown or not a finite number."""
    return finite_number(episode.model_stats.get("total_cost")) or 0.0


def best_of(values: list[float], direction: str) -> float | None:
    return (max(values) if direction == "maximize" else min(values)) if values else None


@dataclass
class RunSummary:
    tasks: list[str]
    methods: list[str]
    directions: dict[str, str]
    baselines: dict[str, float | None]
    #: task -> method (and "baseline") -> best hidden-test score of any scored artefact.
    best: Table
    #: task -> method (and "baseline") -> best final score.
    last: Table
    #: "best attempt" / "best submission" -> method -> AUP.
    aup: dict[str, dict[str, float]]
    ranks: dict[str, float]
    borda: dict[str, float]
    #: method -> mean cost per episode.
    costs: dict[str, float]
    exits: dict[str, Counter] = field(default_factory=dict)
    episodes: dict[tuple[str, str], list[Episode]] = field(default_factory=dict)
    #: task -> the methods with scores read from its evaluator's printed output (stdout_scored).
    stdout_scored: dict[str, list[str]] = field(default_factory=dict)


def task_facts(
    tasks: list[str], carried: dict[str, dict] | None = None, recorded: dict[str, dict] | None = None
) -> tuple[dict[str, str], dict[str, float | None]]:
    """Each task's metric direction and baseline score: an imported run's facts first (`carried`,
    task -> {"direction", "baseline"}: MLGym's own), else the task registry's, else the facts the
    episodes recorded when they were played (`recorded`: a task loaded from a file, or one no
    longer known), else maximise with no baseline."""
    directions, baselines = {}, {}
    for task in tasks:
        own = (carried or {}).get(task)
        if own and own.get("direction") in ("maximize", "minimize"):
            directions[task], baselines[task] = own["direction"], finite_number(own.get("baseline"))
            continue
        try:
            spec = load_task(task)
            directions[task], baselines[task] = spec.metric.direction, spec.baseline_score
        except UnknownNameError:
            played = (recorded or {}).get(task) or {}
            known = played.get("direction") in ("maximize", "minimize")
            directions[task] = played["direction"] if known else "maximize"
            baselines[task] = finite_number(played.get("baseline")) if known else None
    return directions, baselines


def imported_facts(facts: dict[str, Any] | None) -> bool:
    """Whether an episode's task facts are an imported run's (MLGym's baseline and direction,
    importers/mlgym_runs.py), which outrank the registry's, rather than the ones every
    trajectory records of the task it played."""
    return bool(facts) and "mlgym_task" in (facts or {})


def stdout_scored(episodes: list[Episode]) -> dict[str, list[str]]:
    """task -> the methods whose scores of it were read from the evaluator's printed output
    (`result: stdout`, MLGym's convention) rather than the channel only the evaluator can write:
    agent code that such an evaluator imports, runs or unpickles could have forged them. As each
    episode recorded it; for a trajectory that does not say (one written before researchgym
    recorded it), as the task registry's spec says now."""
    channels: dict[str, bool | None] = {}

    def on_channel(task: str) -> bool | None:
        if task not in channels:
            try:
                channels[task] = load_task(task).evaluation.result_channel
            except UnknownNameError:
                channels[task] = None
        return channels[task]

    flagged: dict[str, set[str]] = defaultdict(set)
    for episode in episodes:
        via = episode.result_via
        if via is None and not imported_facts(episode.task_facts) and on_channel(episode.task) is False:
            via = "stdout"
        if via == "stdout":
            flagged[episode.task].add(episode.method)
    return {task: sorted(flagged[task]) for task in sorted(flagged)}


def summarize(episodes: list[Episode]) -> RunSummary:
    tasks = sorted({e.task for e in episodes})
    methods = sorted({e.method for e in episodes})
    carried: dict[str, dict] = {}
    recorded: dict[str, dict] = {}
    for episode in episodes:
        if episode.task_facts:
            into = carried if imported_facts(episode.task_facts) else recorded
            into.setdefault(episode.task, episode.task_facts)
    directions, baselines = task_facts(tasks, carried, recorded)
    by_cell: dict[tuple[str, str], list[Episode]] = defaultdict(list)
    for episode in episodes:
        by_cell[episode.task, episode.method].append(episode)
    best: Table = {}
    last: Table = {}
    for task in tasks:
        best[task] = {"baseline": baselines[task]}
        last[task] = {"baseline": baselines[task]}
        for method in methods:
            cell = by_cell.get((task, method), [])
            best[task][method] = best_of([v for e in cell for v in e.attempt_scores()], directions[task])
            finals = [e.finite_final_score for e in cell]
            last[task][method] = best_of([v for v in finals if v is not None], directions[task])
    aup = compute_aup({"best attempt": best, "best submission": last}, directions) if tasks else {}
    costs = {}
    for method in methods:
        spent = [episode_cost(e) for e in episodes if e.method == method]
        costs[method] = statistics.mean(spent) if spent else 0.0
    exits = {m: Counter(e.exit_category for e in episodes if e.method == m) for m in methods}
    return RunSummary(
        tasks,
        methods,
        directions,
        baselines,
        best,
        last,
        aup,
        mean_ranks(best, directions) if tasks else {},
        borda(best, directions) if tasks else {},
        costs,
        exits,
        dict(by_cell),
        stdout_scored(episodes),
    )
