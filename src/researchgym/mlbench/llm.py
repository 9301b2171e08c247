"""ML-Bench's LLM setting: one call per sample attempt, with one of four contexts, judged.

Every answer is judged and stored as soon as it exists (one SQLite row per attempt), so a
crashed or interrupted run resumes where it stopped: attempts already in the store are skipped.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from researchgym.mlbench.context import build_context
from researchgym.mlbench.data import MLBenchError
from researchgym.mlbench.extract import extract_code
from researchgym.mlbench.judge import Judge
from researchgym.mlbench.metrics import first_pass_at_k, pass_at_k
from researchgym.mlbench.repos import RepoPin, materialize, pin_for
from researchgym.mlbench.schema import Sample
from researchgym.models.base import Message, Model
from researchgym.runs.store import Store

SYSTEM = (
    "You are an expert machine-learning engineer. You are given a GitHub repository and a task to do "
    "with it. Reply with exactly one fenced code block: for a bash task a ```bash block holding the "
    "command(s) to run from the task's folder; for a Python task a ```python block. Nothing else is run."
)


def task_message(sample: Sample, context: str) -> str:
    kind = "bash command" if sample.is_bash else "Python code"
    parts = [f"Repository: {sample.github or sample.repo_name}", f"Folder to run in: {sample.path}"]
    if context:
        parts.append(f"Repository information:\n{context}")
    parts.append(f"Task: {sample.instruction}")
    if not sample.is_bash and sample.prefix_code.strip():  # the judge runs it before the answer
        parts.append(f"This code runs before yours (its names are defined for you):\n{sample.prefix_code.strip()}")
    parts.append(f"Write the {kind} that does the task.")
    return "\n\n".join(parts)


def messages_for(sample: Sample, context: str) -> list[Message]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task_message(sample, context)}]


class Repositories:
    """Repository trees by name, materialised on first use from the pins."""

    def __init__(self, pins: dict[str, RepoPin], judge_mode: str = "strict") -> None:
        self.pins = pins
        #: "strict" (the judge watches what ran) or "original" (ML-Bench's published rules).
        self.judge_mode = judge_mode
        self._trees: dict[str, Path] = {}
        self._judges: dict[str, Judge] = {}

    def pin(self, sample: Sample | str) -> RepoPin:
        """The pin of a sample's repository (or of a repository named so)."""
        if isinstance(sample, str):
            pin = pin_for(self.pins, sample)
            name = sample
        else:
            pin = pin_for(self.pins, sample.repo_name, sample.github, sample.github_id)
            name = sample.repo_name
        if pin is None:
            raise MLBenchError(
                f"no pinned repository named '{name}' (pins: {', '.join(sorted(self.pins))}); "
                "add it to the repository pins file"
            )
        return pin

    def tree(self, sample: Sample | str) -> Path:
        name = self.pin(sample).name
        if name not in self._trees:
            self._trees[name] = materialize(self.pins[name])
        return self._trees[name]

    def judge(self, sample: Sample | str, sandbox: str = "bwrap") -> Judge:
        name = self.pin(sample).name
        if name not in self._judges:
            self._judges[name] = Judge(self.tree(name), sandbox=sandbox, mode=self.judge_mode)
        return self._judges[name]


@dataclass
class Summary:
    setting: str
    model: str
    k: int
    samples: int
    #: Per sample key: the pass/fail of each attempt, in attempt order.
    outcomes: dict[str, list[bool]] = field(default_factory=dict)
    #: Share of attempts passing each check.
    checks: dict[str, float] = field(default_factory=dict)

    def pass_at(self, k: int) -> float:
        return pass_at_k(self.outcomes, k)

    def first_pass_at(self, k: int) -> float:
        return first_pass_at_k(self.outcomes, k)

    def table(self) -> dict[str, Any]:
        ks = [k for k in (1, 2, 5, 10) if k <= self.k] or [self.k]
        return {
            "setting": self.setting,
            "model": self.model,
            "samples": self.samples,
            "attempts": self.k,
            **{f"pass@{k}": self.pass_at(k) for k in ks},
            **{f"mlbench_first_pass@{k}": self.first_pass_at(k) for k in ks},
            **{f"{name}_ok": value for name, value in self.checks.items()},
        }


def summarize(rows: list[dict[str, Any]], *, setting: str, model: str, k: int) -> Summary:
    outcomes: dict[str, list[bool]] = defaultdict(list)
    totals = {"arguments": 0, "type": 0, "execution": 0}
    chosen = [r for r in rows if r["setting"] == setting and r["model"] == model and r["attempt"] < k]
    for row in sorted(chosen, key=lambda r: (r["sample"], r["attempt"])):
        outcomes[row["sample"]].append(bool(row["passed"]))
        for name in totals:
            totals[name] += int(row[f"{name}_ok"])
    checks = {name: value / len(chosen) for name, value in totals.items()} if chosen else {}
    return Summary(setting, model, k, len(outcomes), dict(outcomes), checks)


def run_llm_setting(
    samples: list[Sample],
    model: Model,
    repos: Repositories,
    store: Store,
    *,
    run_id: str,
    setting: str = "oracle",
    k: int = 1,
    budget_chars: int = 100_000,
    sandbox: str = "bwrap",
    on_result: Callable[[dict[str, Any]], None] | None = None,
    workers: int = 1,
) -> Summary:
    """Ask `model` k times per sample, judge every answer, store it; return the summary.

    The model is asked in sample order from this thread (a scripted or rate-limited model sees
    the same sequence whatever `workers` is); up to `workers` answers are judged at once, each in
    its own sandbox. A judged answer is stored as soon as its judgment ends, so an interruption
    loses at most the `workers` answers still being judged (asked again on resume)."""
    if workers < 1:
        raise MLBenchError(f"workers must be at least 1 (answers judged at once), not {workers}")
    done = {
        (r["sample"], r["attempt"])
        for r in store.mlbench_rows(run_id)
        if r["setting"] == setting and r["model"] == model.name
    }

    def judged(sample: Sample, attempt: int, response: Any, asked_s: float) -> dict[str, Any]:
        started = time.monotonic()
        language, code = extract_code(response.text, bash_task=sample.is_bash)
        judgment = repos.judge(sample, sandbox).judge(sample, language, code)
        return {
            "sample": sample.key,
            "repo": sample.repo_name,
            "setting": setting,
            "model": model.name,
            "attempt": attempt,
            "language": language,
            "code": code,
            "reply": response.text,
            "arguments_ok": judgment.arguments.passed,
            "type_ok": judgment.type.passed,
            "execution_ok": judgment.execution.passed,
            "passed": judgment.passed,
            "detail": {**judgment.to_dict(), "seconds": asked_s + time.monotonic() - started},
            "cost": response.cost,
        }

    def settle(finished: set[Future[dict[str, Any]]]) -> None:
        """Stores every judged answer in `finished`, then raises the first judgment's error."""
        error: BaseException | None = None
        for future in finished:
            if future.cancelled():
                continue
            failure = future.exception()
            if failure is not None:
                error = error or failure
                continue
            row = future.result()
            store.record_mlbench(run_id, row)
            if on_result is not None:
                on_result(row)
        if error is not None:
            raise error

    in_flight: set[Future[dict[str, Any]]] = set()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlbench-judge") as pool:
        try:
            for sample in samples:
                tree = repos.tree(sample)  # the judge needs it in every setting
                repos.judge(sample, sandbox)  # made here, not raced for by the judging threads
                context = build_context(sample, tree, setting, budget_chars=budget_chars)
                messages = messages_for(sample, context)
                for attempt in range(k):
                    if (sample.key, attempt) in done:
                        continue
                    while len(in_flight) >= workers:
                        finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        settle(finished)
                    started = time.monotonic()
                    response = model.query(messages)
                    in_flight.add(pool.submit(judged, sample, attempt, response, time.monotonic() - started))
            while in_flight:
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                settle(finished)
        except BaseException:
            # whatever stopped the run, the answers already judged are stored before it propagates
            for future in in_flight:
                future.cancel()
            finished, _ = wait(in_flight)
            with contextlib.suppress(Exception):  # the error that stopped the run is the one to raise
                settle(finished)
            raise
    return summarize(store.mlbench_rows(run_id), setting=setting, model=model.name, k=k)
