"""`researchgym import mlgym`: MLGym's run folders (fake ones, in MLGym's layout) into a store,
then report, AUP (hand-computed) and the viewer's data layer on the import, alone and beside a
run made by researchgym itself."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from researchgym.cli import app
from researchgym.importers import import_mlgym, mlgym_aup
from researchgym.runs.runner import Method, RunConfig, Runner, safe_name
from researchgym.runs.store import Store
from researchgym.runs.trajectory import read_trajectory
from researchgym.viewer.data import RunData

SUFFIX = "default__t-0.00__p-0.95__c-4.00__install-0__parallel_agents"
# (model folder prefix, MLGym task, run) -> results.json's `agent` list. battleOfSexes: Score,
# maximised (our id is the same); 3SATTime: Time, minimised.
RUNS = {
    ("metagen-alpha", "battleOfSexes", 0): [0.6, 0.8, 0.7],
    ("metagen-alpha", "battleOfSexes", 1): [0.9, 0.4],
    ("beta", "battleOfSexes", 0): [0.55],
    ("beta", "battleOfSexes", 1): [0.65, 0.6],  # its .traj is truncated
    ("metagen-alpha", "3SATTime", 0): [15.0, 12.0, 14.0],
    ("metagen-alpha", "3SATTime", 1): [],  # no score at all: a failed run
    ("beta", "3SATTime", 0): [10.0, 20.0],
    ("beta", "3SATTime", 1): [13.0],  # its .traj is missing
}
METRIC = {"battleOfSexes": "Score", "3SATTime": "Time"}
BASELINE = {"battleOfSexes": 0.5, "3SATTime": 16.0}


def _folder(root: Path, model: str, task: str, run: int) -> Path:
    return root / "trajectories" / "mlgym_bench_v0" / f"{model}__{task}__{SUFFIX}_run_{run}"


def _write_runs(root: Path) -> None:
    for (model, task, run), values in RUNS.items():
        folder = _folder(root, model, task, run)
        folder.mkdir(parents=True)
        metric, baseline = METRIC[task], BASELINE[task]
        (folder / "results.json").write_text(
            json.dumps({"agent": [{metric: v} for v in values], "baseline": {metric: baseline}}, indent=2)
        )
        steps = [
            {
                "action": "ls\n",
                "observation": "data/\nevaluate.py*",
                "thought": "Look first.\n",
                "response": "Look first.\n```\nls\n```",
                "state": "{}",
                "execution_time": "0.5",
            }
        ]
        for value in values[:-1]:
            steps.append(
                {
                    "action": "validate\n",
                    "thought": "Score it.\n",
                    "response": "",
                    "state": "{}",
                    "execution_time": "2.0",
                    "observation": f"Your code produced a valid submission artefact at /x.\nBaseline Score: "
                    f"{{'{metric}': {baseline}}}\nEvaluation Score: {{'{metric}': {value}}}",
                }
            )
        submitted = bool(values)
        if submitted:
            steps.append(
                {
                    "action": "submit\n",
                    "observation": "",
                    "thought": "Done.\n",
                    "response": "",
                    "state": "{}",
                    "execution_time": "3.0",
                }
            )
        traj = {
            "environment": "mlgym_main",
            "trajectory": steps,
            "history": [
                {"role": "system", "content": "sys", "agent": "primary"},
                {"role": "user", "content": f"Solve {task}.", "agent": "primary"},
            ],
            "info": {
                "model_stats": {
                    "total_cost": 0.25,
                    "tokens_sent": 1000,
                    "tokens_received": 100,
                    "api_calls": len(steps),
                },
                "exit_status": "submitted" if submitted else "autosubmission (exit_context)",
                "submission": "/x",
                "score": [{metric: v} for v in values],
            },
        }
        text = json.dumps(traj)
        if (model, task, run) == ("beta", "battleOfSexes", 1):
            text = text[: len(text) // 2]  # truncated mid-file
        if (model, task, run) != ("beta", "3SATTime", 1):
            (folder / f"{task}.traj").write_text(text)
    # A run with nothing readable: skipped.
    broken = _folder(root, "beta", "blotto", 0)
    broken.mkdir(parents=True)
    (broken / "results.json").write_text('{"agent": [{"Score": 0.')


# Hand-computed AUP (shared/SPEC.md section 3). Tables, per task:
#   best attempt:    battleOfSexes baseline 0.5, alpha 0.9, beta 0.65;  3SATTime baseline 16, alpha 12, beta 10
#   best submission: battleOfSexes baseline 0.5, alpha 0.7, beta 0.6;   3SATTime baseline 16, alpha 14, beta 13
# Everything is feasible; every tau_t = ceil(worst_ratio * 1.05) = 2, so max_tau = ceil(10 log10 2) / 10 = 0.4,
# and AUP_m ~ mean over the two tasks of (0.4 - log10 r), within one grid step (0.4 / 499) and the
# rounding to 3 decimals.
EXPECTED = {
    "best attempt": {
        "alpha": (0.4 + 0.4 - math.log10(1.2)) / 2,
        "beta": (0.4 - math.log10(0.9 / 0.65) + 0.4) / 2,
        "baseline": (0.4 - math.log10(1.8) + 0.4 - math.log10(1.6)) / 2,
    },
    "best submission": {
        "alpha": (0.4 + 0.4 - math.log10(14 / 13)) / 2,
        "beta": (0.4 - math.log10(0.7 / 0.6) + 0.4) / 2,
        "baseline": (0.4 - math.log10(1.4) + 0.4 - math.log10(16 / 13)) / 2,
    },
}


@pytest.fixture
def mlgym_dir(tmp_path: Path) -> Path:
    root = tmp_path / "MLGym"
    _write_runs(root)
    return root


def test_import_fills_the_store_and_reports_what_it_skipped(mlgym_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "imported"
    report = import_mlgym(mlgym_dir, run_dir)  # the checkout's root: the runs are found below it
    assert (report.imported, report.already_there, report.skipped) == (8, 0, 1)
    warnings = "\n".join(report.warnings)
    assert "beta__battleOfSexes" in warnings and "truncated" in warnings
    assert "beta__3SATTime" in warnings and "no .traj file" in warnings
    assert "beta__blotto" in warnings and "skipped" in warnings

    store = Store(run_dir)
    rows = {(e["task"], e["model"], e["seed"]): e for e in store.episodes()}
    assert set(rows) == {(t, m.removeprefix("metagen-"), r) for m, t, r in RUNS}
    assert all(e["status"] == "finished" and e["agent"] == "mlgym" for e in rows.values())
    alpha = rows["battleOfSexes", "alpha", 0]
    assert (alpha["exit_status"], alpha["final_score"], alpha["steps"]) == ("submitted", 0.7, 4)
    assert (alpha["cost"], alpha["tokens_sent"], alpha["tokens_received"]) == (0.25, 1000, 100)
    failed = rows["3SATTime", "alpha", 1]
    assert failed["exit_status"] == "autosubmission (context_exceeded)" and failed["final_score"] is None
    missing = rows["3SATTime", "beta", 1]
    assert missing["final_score"] == 13.0 and missing["steps"] == 0 and "missing" in missing["error"]
    truncated = rows["battleOfSexes", "beta", 1]  # scores from results.json, no steps
    assert truncated["final_score"] == 0.6 and truncated["steps"] == 0

    scores = [(s["step"], s["kind"], s["split"], s["metric"], s["value"]) for s in store.scores(alpha["id"])]
    # ls, validate (0.6), validate (0.8), submit (0.7): each score at the step that made it.
    assert scores == [
        (2, "validate", "test", "Score", 0.6),
        (3, "validate", "test", "Score", 0.8),
        (4, "submit", "test", "Score", 0.7),
    ]
    config = next(r["config"] for r in store.runs() if r["id"] == "mlgym-import")
    assert config["task_facts"]["3SATTime"] == {
        "direction": "minimize",
        "baseline": 16.0,
        "metric": "Time",
        "mlgym_task": "3SATTime",
    }
    assert config["mlgym_tasks"]["battleOfSexes"] == "battleOfSexes"
    store.close()

    # The trajectory, in researchgym's format.
    records = list(read_trajectory(Path(alpha["trajectory"])))
    assert [r["type"] for r in records] == ["reset", "step", "step", "step", "step", "end"]
    assert (
        records[0]["run_info"] == {"agent": "mlgym", "model": "alpha"}
        and records[0]["prompt"] == "Solve battleOfSexes."
    )
    assert records[2]["action"] == "validate\n" and records[2]["scores"][0]["test"]["value"] == 0.6
    assert records[-1]["final_score"] == 0.7 and records[-1]["mlgym_exit_status"] == "submitted"

    # Re-importing adds nothing and keeps what is there.
    again = import_mlgym(mlgym_dir / "trajectories", run_dir)
    assert (again.imported, again.already_there) == (0, 8)
    assert len(Store(run_dir).episodes()) == 8


def test_aup_as_mlgym_aggregates(mlgym_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "imported"
    import_mlgym(mlgym_dir / "trajectories" / "mlgym_bench_v0", run_dir)
    numbers = mlgym_aup(run_dir)
    assert numbers["best"]["battleOfSexes"] == {"baseline": 0.5, "alpha": 0.9, "beta": 0.65}
    assert numbers["last"]["3SATTime"] == {"baseline": 16.0, "alpha": 14.0, "beta": 13.0}
    for table, expected in EXPECTED.items():
        for method, value in expected.items():
            assert numbers["aup"][table][method] == pytest.approx(value, abs=0.4 / 499 + 0.0005), (table, method)
    # Without the runs whose trajectory was unreadable, beta's best submission on 3SATTime is 20 (worse than
    # the baseline: infeasible) and its best attempt on battleOfSexes 0.55.
    strict = mlgym_aup(run_dir, with_trajectory_only=True)
    assert strict["last"]["3SATTime"]["beta"] == 20.0 and strict["best"]["battleOfSexes"]["beta"] == 0.55
    only_alpha = mlgym_aup(run_dir, ["alpha"])
    assert set(only_alpha["aup"]["best attempt"]) == {"alpha", "baseline"}


def test_cli_import_report_and_viewer(mlgym_dir: Path, tmp_path: Path):
    run_dir = tmp_path / "imported"
    cli = CliRunner()
    result = cli.invoke(app, ["import", "mlgym", str(mlgym_dir), "--out", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "8 episodes imported" in result.output and "warning:" in result.output and "alpha" in result.output

    result = cli.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    markdown = (run_dir / "report" / "report.md").read_text()
    assert "| 3SATTime | min | 16 |" in markdown  # MLGym's baseline, not the registry's
    aup_line = next(line for line in markdown.splitlines() if line.startswith("| alpha | "))
    assert aup_line.split(" | ")[1:3] == [
        f"{mlgym_aup(run_dir)['aup']['best attempt']['alpha']:.3f}",
        f"{mlgym_aup(run_dir)['aup']['best submission']['alpha']:.3f}",
    ]

    data = RunData(run_dir)
    overview = data.overview()
    assert len(overview["episodes"]) == 8 and overview["summary"]["methods"] == ["alpha", "beta"]
    # The viewer rates the import against MLGym's baselines too, as the report does.
    assert overview["summary"]["baselines"]["3SATTime"] == 16.0
    # ... and names, as the report does, the scores MLGym's evaluators printed.
    assert overview["summary"]["stdout_scored"]["battleOfSexes"] == ["alpha", "beta"]
    assert overview["summary"]["aup"]["best attempt"]["alpha"] == pytest.approx(
        mlgym_aup(run_dir)["aup"]["best attempt"]["alpha"]
    )
    key = safe_name("battleOfSexes|mlgym|alpha|0")
    episode = data.episode(key)
    assert [s["action"] for s in episode["steps"]] == ["ls\n", "validate\n", "validate\n", "submit\n"]
    assert (
        episode["steps"][0]["thought"] == "Look first.\n" and "Evaluation Score" in episode["steps"][1]["observation"]
    )
    assert episode["end"]["final_score"] == 0.7
    assert data.observation(key, 2).endswith("{'Score': 0.6}")


def test_report_of_the_import_beside_a_run_of_our_own(mlgym_dir: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    import_mlgym(mlgym_dir, runs / "mlgym")
    config = RunConfig(tasks=["battleOfSexes"], methods=[Method("baseline")], seeds=[0])
    assert Runner(runs / "own", config).run() == {"finished": 1}

    merged = mlgym_aup(runs)  # the folder holding both runs: episodes from every trajectory in it
    assert merged["episodes"] == 9
    assert set(merged["aup"]["best attempt"]) == {"alpha", "beta", "baseline agent", "baseline"}
    assert merged["baselines"]["battleOfSexes"] == 0.5  # the imported task's facts win
    ours = merged["last"]["battleOfSexes"]["baseline agent"]
    assert ours is not None and ours > 0.9  # the scripted agent plays the game for real (~1.0)
    assert merged["last"]["3SATTime"]["baseline agent"] is None

    result = CliRunner().invoke(app, ["report", str(runs), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "baseline agent" in markdown and "| alpha |" in markdown and "| battleOfSexes | max | 0.5 |" in markdown
    # MLGym's evaluators printed the imported scores; ours came over the result channel.
    section = markdown.split("## Scores an agent could forge", 1)[1].split("\n## ", 1)[0]
    assert "- battleOfSexes: alpha, beta" in section and "baseline agent" not in section
    assert RunData(runs / "own").overview()["summary"]["stdout_scored"] == {}
