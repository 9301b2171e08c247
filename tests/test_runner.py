"""The runner: a matrix of episodes at once into one SQLite store, and resume after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from researchgym.eval_secrets import read_secret
from researchgym.runs.runner import Method, RunConfig, Runner
from researchgym.runs.store import Store

TASKS = ["battleOfSexes", "prisonersDilemma", "blotto"]
SUPPORT = str(Path(__file__).parent)


@pytest.fixture(autouse=True)
def support_on_path(monkeypatch):
    monkeypatch.syspath_prepend(SUPPORT)


@pytest.mark.slow
def test_a_matrix_runs_concurrently_into_the_store(tmp_path):
    config = RunConfig(
        tasks=TASKS,
        methods=[Method("react", "support_models:Submitter"), Method("react", "support_models:Fixer")],
        seeds=[0, 1],
        max_episodes=6,
    )
    counts = Runner(tmp_path / "run", config).run()
    assert counts == {"finished": 12}
    store = Store(tmp_path / "run")
    episodes = store.episodes()
    assert len(episodes) == 12 and {e["exit_status"] for e in episodes} == {"submitted"}
    assert all(Path(e["trajectory"]).is_file() for e in episodes)
    assert all(
        e["tokens_sent"] > 0 and e["cost"] == pytest.approx(0.002 if "Submitter" in e["model"] else 0.003)
        for e in episodes
    )
    scores = store.scores()
    # Every episode: one validate (validation + test rows) and one submit (test row).
    assert len(scores) == 36
    best_submission = {}
    for e in episodes:
        key = (e["task"], e["model"])
        best_submission[key] = max(best_submission.get(key, float("-inf")), e["final_score"])
    for task in TASKS:
        assert best_submission[task, "support_models:Fixer"] > best_submission[task, "support_models:Submitter"] + 0.2
    attempts = {}
    for row in scores:
        if row["split"] == "test" and row["value"] is not None:
            e = next(x for x in episodes if x["id"] == row["episode_id"])
            attempts[(e["task"], e["model"])] = max(attempts.get((e["task"], e["model"]), float("-inf")), row["value"])
    assert attempts == pytest.approx(best_submission)  # validated and submitted the same artefact


RUNNER = """
import sys
sys.path.insert(0, {support!r})
from researchgym.runs.runner import Method, RunConfig, Runner
config = RunConfig(tasks={tasks!r}, methods=[Method("react", "support_models:SlowFixer")], seeds=[0, 1],
                   max_episodes=2)
Runner({run!r}, config).run()
"""


def _sandbox_processes(marker: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(pid))
            except OSError:
                pass
    return found


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    run = tmp_path / "killed"
    code = RUNNER.format(support=SUPPORT, tasks=TASKS, run=str(run))
    runner = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if (run / "results.sqlite").exists():
            rows = Store(run).episodes()
            if any(r["status"] == "finished" for r in rows) and any(r["status"] == "running" for r in rows):
                break
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    time.sleep(0.5)
    assert _sandbox_processes(str(run)) == []  # sandboxes died with the runner
    interrupted = Store(run).episodes()
    assert any(r["status"] == "running" for r in interrupted)
    finished_before = {r["id"]: r["final_score"] for r in interrupted if r["status"] == "finished"}
    counts = Runner.resume(run).run()
    assert counts == {"finished": 6}
    resumed = Store(run).episodes()
    for eid, score in finished_before.items():  # finished episodes were not run again
        assert next(r for r in resumed if r["id"] == eid)["final_score"] == score
    # The resumed episodes used the run's stored evaluation secret: a new run given that secret
    # (--eval-seed-file RUN_DIR) reproduces every test score.
    reference = tmp_path / "reference"
    Runner(reference, RunConfig.from_json((run / "run.json").read_text()), eval_secret=read_secret(run)).run()
    expected = {(r["id"], r["exit_status"], r["final_score"]) for r in Store(reference).episodes()}
    assert {(r["id"], r["exit_status"], r["final_score"]) for r in resumed} == expected
    assert len(Store(run).scores()) == len(Store(reference).scores())  # no duplicated scores
    # Without it, the hidden test games are other games: the scores cannot be predicted from the
    # run's public configuration.
    other = tmp_path / "other"
    Runner(other, RunConfig.from_json((run / "run.json").read_text())).run()
    assert read_secret(other) != read_secret(run)
    assert {(r["id"], r["final_score"]) for r in Store(other).episodes()} != {(i, s) for i, _, s in expected}


def test_cli_matrix_run_resume_and_report_from_the_store(tmp_path):
    from typer.testing import CliRunner

    from researchgym.analysis.episodes import load_episodes
    from researchgym.cli import app

    cli = CliRunner()
    result = cli.invoke(app, ["run", "battleOfSexes", "prisonersDilemma", "--seeds", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    run_dir = next(tmp_path.glob("run-*"))
    assert "4 finished" in result.output and (run_dir / "results.sqlite").is_file()
    again = cli.invoke(app, ["run", "--resume", str(run_dir)])
    assert again.exit_code == 0 and "4 finished" in again.output  # nothing left to run
    assert len(Store(run_dir).episodes()) == 4
    episodes = load_episodes(run_dir)  # read from the store
    assert len(episodes) == 4 and all(e.actions == ["validate", "submit"] for e in episodes)
    report = cli.invoke(app, ["report", str(run_dir)])
    assert report.exit_code == 0, report.output
    markdown = (run_dir / "report" / "report.md").read_text()
    assert "| battleOfSexes |" in markdown and "| prisonersDilemma |" in markdown
    assert cli.invoke(app, ["run", "--suite", "nope"]).exit_code == 2


class InFlight:
    """Counts the episodes the runner has started and not yet settled, from its own events."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self.kinds: list[str] = []

    def __call__(self, kind, plan, data) -> None:
        self.kinds.append(kind)
        self.now += 1 if kind == "started" else -1
        self.peak = max(self.peak, self.now)


def test_the_same_episodes_through_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    config = RunConfig(
        tasks=["battleOfSexes", "prisonersDilemma"], methods=[Method("baseline")], seeds=[0, 1], max_sandboxes=2
    )
    on_ray, on_threads = InFlight(), InFlight()
    counts = Runner(tmp_path / "ray", config, executor="ray", on_event=on_ray).run()
    assert counts == {"finished": 4}
    local = Runner(
        tmp_path / "local",
        RunConfig.from_json((tmp_path / "ray" / "run.json").read_text()),
        eval_secret=read_secret(tmp_path / "ray"),
        on_event=on_threads,
    ).run()  # the same hidden test seeds
    assert local == {"finished": 4}
    # The sandbox cap holds on both executors: the runner's one loop submits at most two at once.
    for events in (on_ray, on_threads):
        assert events.peak == 2 and events.now == 0
        assert events.kinds.count("started") == events.kinds.count("finished") == 4

    def contents(folder):
        store = Store(folder)
        episodes = {(e["id"], e["exit_status"], e["final_score"]) for e in store.episodes()}
        scores = {(s["episode_id"], s["step"], s["split"], s["value"]) for s in store.scores()}
        return episodes, scores

    assert contents(tmp_path / "ray") == contents(tmp_path / "local")
