"""Every option of `researchgym run` (and the other commands that take a run folder), given a bad
value one at a time: each ends with a message and a non-zero exit (or, where the value is
legal, a normal run), never a traceback. The options are read from the command itself, so a new
option is covered the day it is added."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from researchgym.cli import app

COMMAND: Any = typer.main.get_command(app)  # a group (typer ships its own click)

#: Bad values by the option's type: out of range, not a number, missing, a file for a folder.
BAD_NUMBERS = ["-1", "abc", "1e999", "0"]
BAD_TEXT = ["💥", "", "nope"]
BAD_PATHS = ["/nonexistent/x.yaml", "/etc/hostname", "/proc"]


def bad_values(param: Any) -> list[str]:
    kind = param.type_descriptor.annotation
    if kind in (int, float):
        return BAD_NUMBERS
    if kind is Path:
        return BAD_PATHS
    return BAD_TEXT


def cases(command: str) -> list[tuple[str, str]]:
    found = []
    for param in COMMAND.commands[command].params:
        if param.param_type_name != "option" or param.is_flag or param.name in {"help", "resume"}:
            continue
        name = max(param.opts, key=len)
        found.extend((name, value) for value in bad_values(param))
    return found


def no_traceback(argv: list[str]) -> Any:
    result = CliRunner().invoke(app, argv, env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{argv!r} raised {type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert "Traceback" not in result.output, (argv, result.output)
    if result.exit_code != 0:  # the message is one line (or click's usage box), naming something
        assert result.output.strip(), argv
    return result


@pytest.mark.slow  # 60-odd short episodes: the full suite runs it, the fast tier does not
@pytest.mark.parametrize(("option", "value"), cases("run"))
def test_a_bad_value_for_any_run_option_is_a_message(tmp_path: Path, option: str, value: str, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a value that is legal plays one short baseline episode, so the test never waits on a model
    argv = ["run", "battleOfSexes", "--max-steps", "2", "--out", str(tmp_path / "runs"), option, value]
    if option == "--out":
        argv = ["run", "battleOfSexes", "--max-steps", "2", option, value]
    if option in ("--model",):
        argv += ["--api-base", "http://127.0.0.1:9"]  # nothing listens there: a model never answers
    no_traceback(argv)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["run", "battleOfSexes", "--seeds", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return next(out.glob("run-*"))


@pytest.mark.parametrize("command", ["report", "view", "export", "aup"])
def test_a_bad_value_for_any_option_of_the_run_folder_commands_is_a_message(
    run_folder: Path, command: str, tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # a relative --out ("nope") lands here, not in the checkout
    for option, value in cases(command):
        if command == "view" and value in ("0", "abc") and option == "--port":
            continue  # port 0 is legal and would serve forever
        if command == "view" and option == "--host":
            continue  # a legal host would serve forever
        no_traceback([command, str(run_folder), option, value])


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--agent", "baseline", "--model", "openai/gpt-4o"], ["plays without a model", "--agent react"]),
        (["--memory", "true"], ["'true' is not a task", "switches"]),
        (["--out", "/etc/hostname"], ["--out /etc/hostname is a file"]),
        (["--max-steps", "-3"], ["--max-steps: should be greater than or equal to 1"]),
        (["--seeds", "0"], ["--seeds: should be at least 1"]),
        (["--seed", "-1"], ["--seed: should be greater than or equal to 0"]),
        (["--model", "replay:missing.jsonl"], ["--model replay:missing.jsonl", "cannot read"]),
        (["--model", "nosuch_module:Model"], ["--model nosuch_module:Model", "No module named"]),
        (["--model", "nosuch"], ["unknown model 'nosuch'", "provider/model"]),
        (["--model", "local/nope"], ["unknown local model 'local/nope'", "local/smollm2"]),
        (["--model", "openai/gpt-4o", "--agent-config", "{jinja}"], ["templates.system", "Jinja"]),
    ],
)
def test_a_run_that_cannot_work_is_refused_before_it_starts_with_what_to_do(tmp_path: Path, argv, words):
    bad = tmp_path / "agent.yaml"
    bad.write_text("templates:\n  system: '{{ task.description'\n")
    argv = [str(bad) if word == "{jinja}" else word for word in argv]
    result = CliRunner().invoke(app, ["run", "battleOfSexes", "--out", str(tmp_path / "runs"), *argv])
    assert result.exit_code == 2, result.output
    assert all(word in result.output for word in words), result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing was started


def test_view_refuses_a_file_as_the_export_folder_and_a_port_out_of_range(run_folder: Path):
    result = CliRunner().invoke(app, ["view", str(run_folder), "--export", "/etc/hostname"])
    assert result.exit_code == 2 and "is a file" in result.output, result.output
    result = CliRunner().invoke(app, ["view", str(run_folder), "--port", "99999"])
    assert result.exit_code == 2 and "65535" in result.output, result.output
