"""`researchgym tasks` at the widths people have, its JSON for scripts, and the top-level options."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_task
from rich.cells import cell_len
from typer.testing import CliRunner

import researchgym
from researchgym.cli import app
from researchgym.tasks.registry import all_tasks

runner = CliRunner()


def _whole(word: str, text: str) -> bool:
    """`word` appears in `text` unbroken and untruncated (not as the start of a longer id)."""
    return re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w.-])", text) is not None


def _baseline(score: float | None) -> str:
    return f"{score:.6g}" if score is not None else "-"


@pytest.mark.parametrize("columns", [80, 120])
def test_tasks_fits_the_terminal_and_keeps_ids_metrics_and_baselines_whole(columns: int):
    result = runner.invoke(app, ["tasks"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    for spec in all_tasks(errors=[]):
        for word in (spec.id, spec.metric.name, _baseline(spec.baseline_score)):
            assert _whole(word, result.output), f"{word!r} of {spec.id} is not whole at {columns} columns"
    # The listing itself fits (the notes after it, one per line, may run on).
    listing = [line for line in result.output.splitlines() if "cannot run here" not in line and "skipped a" not in line]
    assert max(cell_len(line) for line in listing) <= columns


def test_tasks_at_120_columns_is_a_table_with_a_line_per_task():
    result = runner.invoke(app, ["tasks"], env={"COLUMNS": "120"})
    lines = result.output.splitlines()
    for spec in all_tasks(errors=[]):
        row = next(line for line in lines if _whole(spec.id, line))
        assert _whole(spec.metric.name, row) and _whole(_baseline(spec.baseline_score), row)


def test_tasks_path_at_80_columns_keeps_every_field(tmp_path: Path):
    write_task(tmp_path)
    result = runner.invoke(app, ["tasks", "--path", str(tmp_path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    for word in ("tiny", "task.yaml", "accuracy", "maximize", "0.5", "ready"):
        assert _whole(word, result.output)
    assert "1 of 1 ready" in result.output


def test_tasks_json_agrees_with_the_registry():
    result = runner.invoke(app, ["tasks", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    specs = all_tasks(errors=[])
    assert [entry["id"] for entry in listed] == [spec.id for spec in specs]
    for entry, spec in zip(listed, specs, strict=True):
        assert entry["name"] == spec.name and entry["gym_id"] == spec.gym_id and entry["domain"] == spec.domain
        assert entry["metric"] == {"name": spec.metric.name, "direction": spec.metric.direction}
        assert entry["baseline_score"] == spec.baseline_score
        assert entry["requirements"]["gpus"] == spec.requires.gpus
        assert entry["requirements"]["extras"] == spec.requirements
        assert entry["requirements"]["missing_extras"] == spec.missing_requirements()
        assert entry["available"] is (not entry["unavailable"])
        assert Path(entry["file"]).is_file()


def test_tasks_json_says_why_a_task_cannot_run_and_keeps_broken_ones_off_stdout(tmp_path: Path):
    write_task(tmp_path, extra_yaml="requirements: [no_such_extra_for_researchgym]\nrequires: {gpus: 4096}\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "task.yaml").write_text("id: broken\n")
    result = runner.invoke(
        app, ["tasks", "--path", str(tmp_path), "--json"], env={"RESEARCHGYM_ALLOW_NO_GPU": "0", "COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    assert entry["id"] == "tiny" and entry["file"] == str(tmp_path / "tiny" / "task.yaml")
    assert entry["requirements"]["missing_extras"] == ["no_such_extra_for_researchgym"]
    assert entry["available"] is False
    assert [reason["field"] for reason in entry["unavailable"]] == ["requirements", "requires"]
    # not an extra: named as the module it was checked as, with no install command that cannot work
    assert "no_such_extra_for_researchgym, which no researchgym extra provides" in entry["unavailable"][0]["problem"]
    assert "4096 GPU" in entry["unavailable"][1]["problem"]
    assert "skipped a broken task" in result.stderr and "broken" in result.stderr


def test_tasks_json_for_a_missing_folder_is_a_clear_error(tmp_path: Path):
    result = runner.invoke(app, ["tasks", "--path", str(tmp_path / "nowhere"), "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert "no such folder" in result.stderr


def test_version_option():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"researchgym {researchgym.__version__}\n"


def test_version_through_the_console_script():
    exe = Path(sys.executable).parent / "researchgym"
    completed = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"researchgym {researchgym.__version__}\n"


@pytest.mark.parametrize(
    "argv",
    [[], ["tasks"], ["run"], ["report"], ["mlbench"], ["mlbench", "llm"], ["import"]],
    ids=lambda argv: " ".join(argv) or "app",
)
def test_dash_h_is_help_everywhere(argv: list[str]):
    short = runner.invoke(app, [*argv, "-h"], env={"COLUMNS": "120"}, prog_name="researchgym")
    long = runner.invoke(app, [*argv, "--help"], env={"COLUMNS": "120"}, prog_name="researchgym")
    assert short.exit_code == 0, short.output
    assert f"Usage: {' '.join(['researchgym', *argv])} [OPTIONS]" in short.stdout and short.stdout == long.stdout
