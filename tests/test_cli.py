"""The command line, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from researchgym.cli import app
from researchgym.runs.store import Store

runner = CliRunner()


def test_tasks_lists_battle_of_sexes():
    result = runner.invoke(app, ["tasks"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "battleOfSexes" in result.output and "Score" in result.output and "maximize" in result.output
    fineweb = next(line for line in result.output.splitlines() if "fineweb-lm" in line)
    assert "hub" in fineweb and "1 GPU" in fineweb  # what it needs, hardware included


def test_run_prints_progress_score_and_trajectory(tmp_path: Path):
    result = runner.invoke(app, ["run", "battleOfSexes", "--out", str(tmp_path), "--seed", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "step   1/50" in result.output and "validation Score" in result.output
    assert "final score" in result.output and "exit status: submitted" in result.output
    files = list(tmp_path.rglob("*.jsonl"))
    assert len(files) == 1 and str(files[0]) in result.output.replace("\n", "")
    assert json.loads(files[0].read_text().splitlines()[-1])["type"] == "end"
    # A single episode is a run of one: its run folder has the store, as any run's has.
    (run_dir,) = tmp_path.iterdir()
    (episode,) = Store(run_dir).episodes()
    assert episode["status"] == "finished" and episode["seed"] == 1 and episode["trajectory"] == str(files[0])
    assert f"report: researchgym report {run_dir}" in result.output


def test_run_unknown_task_is_a_clear_error(tmp_path: Path):
    result = runner.invoke(app, ["run", "battleOfSex", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown task 'battleOfSex'" in result.output and "battleOfSexes" in result.output


def test_run_unknown_agent_is_a_clear_error(tmp_path: Path):
    result = runner.invoke(app, ["run", "battleOfSexes", "--agent", "gpt", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown agent 'gpt'" in result.output


@pytest.mark.parametrize(
    "argv, message",
    [
        (["battleOfSexes", "blotto", "--agent", "baseline", "--agent", "gpt"], "unknown agent 'gpt'"),
        (["battleOfSexes", "blotto", "--seeds", "2", "--sandbox", "docker"], "unknown sandbox 'docker'"),
        (["battleOfSexes", "blotto", "--agent", "react"], "the react agent needs a model"),
        (["battleOfSexes", "--max-steps", "0"], "--max-steps: should be"),
        (["battleOfSexes", "blotto", "--seeds", "0"], "--seeds: should be at least 1"),
        (["battleOfSexes", "--seed", "-1"], "--seed: should be"),
        (["battleOfSexes", "--resume", "somewhere"], "give no task or --suite with it"),
    ],
)
def test_a_run_with_a_bad_name_or_setting_is_refused_before_anything_starts(tmp_path: Path, argv, message):
    result = runner.invoke(app, ["run", *argv, "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "runs").exists()  # no run folder, no episode failed N times over


def test_a_task_named_twice_plays_once(tmp_path: Path):
    result = runner.invoke(
        app, ["run", "battleOfSexes", "--suite", "games", "--out", str(tmp_path), "--max-steps", "2"]
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = tmp_path.iterdir()
    assert sorted(e["task"] for e in Store(run_dir).episodes()) == ["battleOfSexes", "blotto", "prisonersDilemma"]


def test_demo_console_script_end_to_end(tmp_path: Path):
    exe = Path(sys.executable).parent / "researchgym"
    completed = subprocess.run([str(exe), "demo", "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "final score" in completed.stdout and "trajectory:" in completed.stdout


def test_tools_lists_the_interface_commands():
    result = runner.invoke(app, ["tools"])
    assert result.exit_code == 0
    assert "open <path> [<line_number>]" in result.output and "end_of_edit" in result.output


def test_every_suite_names_known_tasks():
    from researchgym.cli import SUITES
    from researchgym.tasks.registry import load_task

    for name, tasks in SUITES.items():
        for task in tasks:
            assert load_task(task).id == task, (name, task)
    assert len(SUITES["mlgym"]) == 13


def _run_config(folder: Path) -> dict:
    config = json.loads(next(folder.glob("run-*/run.json")).read_text())
    config.pop("run_id")
    return config


def test_a_run_file_equals_the_same_run_from_flags(tmp_path: Path):
    agent_config = tmp_path / "agent.yaml"
    agent_config.write_text("model:\n  max_output_tokens: 300\n")
    flags = [
        "battleOfSexes",
        "prisonersDilemma",
        "--seeds",
        "2",
        "--agent",
        "baseline",
        "--max-steps",
        "12",
        "--temperature",
        "0.3",
        "--agent-config",
        str(agent_config),
        "--max-episodes",
        "2",
    ]
    by_flags = runner.invoke(app, ["run", *flags, "--out", str(tmp_path / "flags")])
    assert by_flags.exit_code == 0, by_flags.output
    (tmp_path / "exp.yaml").write_text(
        "tasks: [battleOfSexes, prisonersDilemma]\nseeds: 2\nagents: baseline\nmax-steps: 12\ntemperature: 0.3\n"
        f"agent_config: {agent_config}\nmax_episodes: 2\nout: {tmp_path / 'file'}\n"
    )
    by_file = runner.invoke(app, ["run", "-c", str(tmp_path / "exp.yaml")])
    assert by_file.exit_code == 0, by_file.output
    assert _run_config(tmp_path / "file") == _run_config(tmp_path / "flags")
    assert "4 finished" in by_file.output and "4 finished" in by_flags.output
    overridden = runner.invoke(
        app,
        [
            "run",
            "-c",
            str(tmp_path / "exp.yaml"),
            "--seeds",
            "1",
            "--out",
            str(tmp_path / "override"),
            "prisonersDilemma",
        ],
    )
    assert overridden.exit_code == 0, overridden.output
    config = _run_config(tmp_path / "override")  # flags win: one seed, one task, the file's other settings
    assert config["seeds"] == [0] and config["tasks"] == ["prisonersDilemma"] and config["temperature"] == 0.3


def test_a_run_file_with_an_unknown_option_names_it(tmp_path: Path):
    (tmp_path / "exp.yaml").write_text("tasks: [battleOfSexes]\nsedes: 2\n")
    result = runner.invoke(
        app, ["run", "-c", str(tmp_path / "exp.yaml"), "--out", str(tmp_path)], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 2 and "unknown run option 'sedes'" in result.output and "exp.yaml" in result.output
    assert "Traceback" not in result.output and not list(tmp_path.glob("run-*"))


def test_one_error_boundary_turns_a_researchgym_error_into_one_line():
    import typer

    from researchgym.cli import _ErrorBoundary
    from researchgym.errors import ResearchGymError

    probe = typer.Typer(cls=_ErrorBoundary)

    @probe.command()
    def fails() -> None:
        raise ResearchGymError("the task file x.yaml: field 'metric' is missing; add it ([tabular] stays text)")

    @probe.command()
    def other() -> None:  # two commands, so the probe is a group as the real app is
        pass

    result = runner.invoke(probe, ["fails"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "error: the task file x.yaml: field 'metric' is missing; add it ([tabular] stays text)" in result.output
    assert result.stdout == ""  # errors go to stderr


def test_bad_mlbench_options_are_one_line_errors():
    cases = ((["--setting", "oracel"], "--setting must be one of"), (["-k", "0"], "-k must be at least 1"))
    for args, message in cases:
        result = runner.invoke(app, ["mlbench", "llm", "--model", "x", *args])
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_registered_model_is_found_by_its_short_name(tmp_path: Path, monkeypatch):
    from custom_model import SubmitAtOnce

    from researchgym.models import MODELS

    monkeypatch.setitem(MODELS._items, "submit-at-once", "custom_model:SubmitAtOnce")
    result = runner.invoke(
        app,
        [
            "run",
            "battleOfSexes",
            "--model",
            "submit-at-once",
            "--temperature",
            "0.4",
            "--out",
            str(tmp_path),
            "--seed",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "exit status: submitted" in result.output
    # only the settings its constructor declares (no top_p, no api_base), the run's temperature among them
    assert SubmitAtOnce.built_with == {"temperature": 0.4, "max_output_tokens": 1024}
