"""ML-Bench judgments of a run, summarised for the report and the viewer.

The rows are the `mlbench` table of a run's store (one judged answer per sample, setting, model
and attempt; see runs/store.py). Answers are grouped by (setting, model, judge mode): the judge
mode comes from the run's configuration (`judge`, written by `researchgym mlbench`), else from
the judgment itself (`detail["mode"]`), else from the run id's `-original` suffix. Per group:
the unbiased pass@1 and pass@k (k = the attempts every sample has, when more than one), the
same per repository, and how many answers failed each check, with the timeouts among the
execution failures (the strict judge fails a timeout; the original judge counts it as a pass,
so those are counted apart). Where one setting and model were judged in both modes, the two are
put side by side.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from researchgym.analysis.episodes import finite_number
from researchgym.mlbench.metrics import first_pass_at_k, pass_at_k

MODES = ("strict", "original")
CHECKS = ("arguments", "type", "execution")
#: How the judge words a timeout in the execution check's detail (judge.py, both modes).
TIMEOUT_PREFIX = "timed out after"


@dataclass
class Answer:
    """One judged answer, as the viewer's list shows it (no code, no reply)."""

    key: str
    run_id: str
    sample: str
    repo: str
    setting: str
    model: str
    attempt: int
    mode: str
    language: str | None
    passed: bool
    arguments_ok: bool
    type_ok: bool
    execution_ok: bool
    timed_out: bool
    cost: float | None
    seconds: float | None


@dataclass
class PassRates:
    samples: int
    #: k: the number of attempts every sample has (the fewest any sample has).
    attempts: int
    answers: int
    pass_at_1: float
    #: pass@k for k = `attempts`, when that is more than 1.
    pass_at_k: float | None = None
    #: ML-Bench's original number (first passing answer among the first k), for comparison only.
    first_pass_at_k: float | None = None


@dataclass
class ErrorCounts:
    answers: int = 0
    arguments_failed: int = 0
    type_failed: int = 0
    execution_failed: int = 0
    #: Execution failures that were timeouts (the strict judge).
    timeouts: int = 0
    #: Timeouts the judge counted as passing the execution check (the original judge).
    timeouts_passed: int = 0


@dataclass
class Group:
    setting: str
    model: str
    mode: str
    rates: PassRates
    errors: ErrorCounts
    repos: dict[str, PassRates] = field(default_factory=dict)
    cost: float = 0.0


@dataclass
class Comparison:
    """One setting and model judged by both judges."""

    setting: str
    model: str
    strict: Group
    original: Group


@dataclass
class MLBenchSummary:
    groups: list[Group]
    comparisons: list[Comparison]
    answers: list[Answer]

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": [asdict(g) for g in self.groups],
            "comparisons": [
                {"setting": c.setting, "model": c.model, "strict": asdict(c.strict), "original": asdict(c.original)}
                for c in self.comparisons
            ],
        }


def answer_key(row: dict[str, Any]) -> str:
    """A URL- and file-safe name for one stored answer, unique within a store: the primary key
    made safe (readable), plus a short hash of it (two keys that the cleaning made alike stay
    apart). The viewer addresses answers by it, never by anything else."""
    ident = "|".join(str(row[name]) for name in ("run_id", "sample", "setting", "model", "attempt"))
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', ident)[:120]}-{hashlib.sha256(ident.encode()).hexdigest()[:10]}"


def parse_detail(row: dict[str, Any]) -> dict[str, Any]:
    """The judge's details of a row (stored as JSON text); an unreadable value is reported, not
    raised, so one damaged row does not hide a whole run."""
    raw = row.get("detail")
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {"unreadable": str(raw)}
    return value if isinstance(value, dict) else {"unreadable": str(raw)}


def run_modes(runs: list[dict[str, Any]]) -> dict[str, str]:
    """Run id -> judge mode, from the runs' configurations (`researchgym mlbench` writes `judge`)."""
    modes = {}
    for run in runs:
        config = run.get("config")
        if isinstance(config, dict) and config.get("judge") in MODES:
            modes[run["id"]] = config["judge"]
    return modes


def judge_mode(row: dict[str, Any], detail: dict[str, Any], modes: dict[str, str]) -> str:
    """Which judge gave a row's verdict: the run's configuration says it for every row of the
    run (an ML-Agent that left no run.sh gets a judgment that names no judge), else the
    judgment, else the run id."""
    if row.get("run_id") in modes:
        return modes[row["run_id"]]
    if detail.get("mode") in MODES:
        return detail["mode"]
    return "original" if str(row.get("run_id", "")).endswith("-original") else "strict"


def timed_out(detail: dict[str, Any]) -> bool:
    """Whether the answer's run hit its time limit, read from the execution check's words."""
    execution = detail.get("execution")
    return isinstance(execution, dict) and str(execution.get("detail", "")).startswith(TIMEOUT_PREFIX)


def to_answer(row: dict[str, Any], modes: dict[str, str]) -> Answer:
    """A store row as the list shows it."""
    detail = parse_detail(row)
    seconds = detail.get("seconds")
    return Answer(
        answer_key(row),
        str(row["run_id"]),
        str(row["sample"]),
        str(row.get("repo") or ""),
        str(row.get("setting") or ""),
        str(row.get("model") or ""),
        int(row.get("attempt") or 0),
        judge_mode(row, detail, modes),
        row.get("language"),
        bool(row["passed"]),
        bool(row["arguments_ok"]),
        bool(row["type_ok"]),
        bool(row["execution_ok"]),
        timed_out(detail),
        finite_number(row.get("cost")),
        finite_number(seconds),
    )


def _rates(outcomes: dict[str, list[bool]], k: int | None = None) -> PassRates:
    """pass@1 and pass@k of per-sample outcomes; k defaults to the fewest attempts of any sample
    (pass@k needs k answers from every sample)."""
    k = k if k is not None else min(len(v) for v in outcomes.values())
    answers = sum(len(v) for v in outcomes.values())
    rates = PassRates(len(outcomes), k, answers, pass_at_k(outcomes, 1))
    if k > 1:
        rates.pass_at_k = pass_at_k(outcomes, k)
        rates.first_pass_at_k = first_pass_at_k(outcomes, k)
    return rates


def summarize(rows: list[dict[str, Any]], runs: list[dict[str, Any]] | None = None) -> MLBenchSummary:
    """The summary of a store's rows (and its runs, for the judge mode of each run).

    A (sample, attempt) stored twice in one group (the same setting, model and judge under two
    run ids) counts once: the later judgment."""
    if not rows:
        raise ValueError("no ML-Bench judgments to summarise")
    modes = run_modes(runs or [])
    latest: dict[tuple[str, str, str], dict[tuple[str, int], tuple[dict[str, Any], Answer]]] = defaultdict(dict)
    answers = []
    for row in sorted(rows, key=lambda r: r.get("created") or 0.0):
        answer = to_answer(row, modes)
        answers.append(answer)
        latest[(answer.setting, answer.model, answer.mode)][(answer.sample, answer.attempt)] = (row, answer)
    groups = []
    for (setting, model, mode), chosen in sorted(latest.items()):
        outcomes: dict[str, list[bool]] = defaultdict(list)
        by_repo: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
        errors, cost = ErrorCounts(), 0.0
        for (sample, _), (_row, answer) in sorted(chosen.items()):
            outcomes[sample].append(answer.passed)
            by_repo[answer.repo][sample].append(answer.passed)
            errors.answers += 1
            errors.arguments_failed += not answer.arguments_ok
            errors.type_failed += not answer.type_ok
            errors.execution_failed += not answer.execution_ok
            errors.timeouts += answer.timed_out and not answer.execution_ok
            errors.timeouts_passed += answer.timed_out and answer.execution_ok
            cost += finite_number(answer.cost) or 0.0  # an old row's NaN or infinity: unknown
        rates = _rates(outcomes)
        repos = {repo: _rates(dict(samples), rates.attempts) for repo, samples in sorted(by_repo.items())}
        groups.append(Group(setting, model, mode, rates, errors, repos, cost))
    both: defaultdict[tuple[str, str], dict[str, Group]] = defaultdict(dict)
    for group in groups:
        both[(group.setting, group.model)][group.mode] = group
    comparisons = [
        Comparison(setting, model, pair["strict"], pair["original"])
        for (setting, model), pair in sorted(both.items())
        if len(pair) == 2
    ]
    answers.sort(key=lambda a: (a.setting, a.model, a.mode, a.sample, a.attempt, a.run_id))
    return MLBenchSummary(groups, comparisons, answers)


def summarize_store(store: Any) -> MLBenchSummary | None:
    """The summary of a `Store`'s ML-Bench rows, or None when it has none (a run of episodes)."""
    rows = store.mlbench_rows()
    return summarize(rows, store.runs()) if rows else None


def summarize_run(run_dir: str | Path) -> MLBenchSummary | None:
    """The summary of the run folder's store (RUN_DIR/results.sqlite), or None when the folder
    has no store or the store no ML-Bench rows. A missing store is never created."""
    from researchgym.runs.store import DB_NAME, Store

    if not (Path(run_dir) / DB_NAME).is_file():
        return None
    store = Store(run_dir)
    try:
        return summarize_store(store)
    finally:
        store.close()
