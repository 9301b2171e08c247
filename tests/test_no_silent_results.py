"""Results that used to come out wrong without a word: a replay that found no replies, an export
of nothing, ML-Bench judged without its packages, a limit of no samples."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from researchgym.cli import app
from researchgym.models import create_model
from researchgym.runs.trajectory import load_trajectory


def test_a_replay_finds_the_replies_kept_in_the_auto_submission(tmp_path: Path):
    """Three replies without a command end the episode on its first move: the replies sit in
    the auto-submission record alone, and a replay must still play them."""
    replies = tmp_path / "replies.txt"
    replies.write_text("no command here\n---\nstill none\n---\nnothing at all\n")
    result = CliRunner().invoke(app, ["run", "battleOfSexes", "--model", f"mock:{replies}", "--out", str(tmp_path)])
    assert "format_error" in result.output, result.output
    trajectory = next(tmp_path.glob("run-*/trajectories/**/*.jsonl"))
    recorded = load_trajectory(trajectory)
    assert recorded.steps == [] and recorded.autosubmit is not None
    replay = create_model(f"replay:{trajectory}")
    first = replay.query([{"role": "user", "content": "go"}])
    assert first.text.strip() == "no command here"


def test_exporting_a_run_without_model_replies_says_why_it_wrote_nothing(tmp_path: Path):
    result = CliRunner().invoke(app, ["run", "battleOfSexes", "--seeds", "1", "--out", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    run_dir = next((tmp_path / "runs").glob("run-*"))
    result = CliRunner().invoke(app, ["export", str(run_dir), "--out", str(tmp_path / "export")])
    assert result.exit_code == 2, result.output
    assert "gave no rows" in result.output and "baseline" in result.output


def test_ml_bench_without_its_extra_warns_before_judging(monkeypatch, tmp_path: Path):
    from researchgym.tasks import spec

    monkeypatch.setitem(spec.EXTRA_MODULES, "mlbench", ["sklearn", "a_module_nobody_installed"])
    result = CliRunner().invoke(
        app, ["mlbench", "llm", "--model", "nosuch_module:Model", "--out", str(tmp_path / "mb")]
    )
    assert "the mlbench extra is not installed (missing a_module_nobody_installed)" in result.output
    assert "make install EXTRAS=mlbench" in result.output and ".[mlbench]" in result.output  # not eaten as markup
    assert result.exit_code == 2 and "--model nosuch_module:Model" in result.output  # and a model it cannot load


def test_ml_bench_refuses_a_limit_of_no_samples(tmp_path: Path):
    result = CliRunner().invoke(app, ["mlbench", "llm", "--model", "mock", "--limit", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--limit" in result.output, result.output


def test_prepare_of_a_task_whose_extra_is_missing_names_what_to_install(tmp_path: Path):
    from conftest import write_task

    task = write_task(tmp_path, extra_yaml="requirements: [tabular, definitely_not_a_module]\n")
    result = CliRunner().invoke(app, ["prepare", str(task)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "cannot prepare" in result.output and "definitely_not_a_module" in result.output
