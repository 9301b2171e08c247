"""What `researchgym run` tells its user at the end: a table of every episode, `--json` for
scripts, and a non-zero exit when the model never answered."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from researchgym.cli import app


def test_a_run_of_several_episodes_ends_with_a_table_of_every_episode(tmp_path: Path):
    argv = ["run", "battleOfSexes", "prisonersDilemma", "--seeds", "2", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, argv, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("episodes\n") :]
    for task in ("battleOfSexes", "prisonersDilemma"):
        for seed in ("0", "1"):
            assert any(task in line and f" {seed} " in line and "submitted" in line for line in table.splitlines())


def test_json_results_go_to_stdout_alone(tmp_path: Path):
    result = CliRunner().invoke(app, ["run", "battleOfSexes", "--seeds", "2", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # nothing but the JSON on stdout: progress and table went to stderr
    assert data["counts"] == {"finished": 2}
    assert [(e["task"], e["seed"], e["status"]) for e in data["episodes"]] == [
        ("battleOfSexes", 0, "finished"),
        ("battleOfSexes", 1, "finished"),
    ]
    assert all(e["final_score"] is not None and Path(e["trajectory"]).is_file() for e in data["episodes"])
    assert Path(data["run_dir"]).is_dir()
    assert "episodes" in result.stderr


def test_json_of_a_single_episode(tmp_path: Path):
    result = CliRunner().invoke(app, ["run", "battleOfSexes", "--seed", "3", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(e["seed"], e["exit_status"]) for e in data["episodes"]] == [(3, "submitted")]
    assert "final score" in result.stderr


def test_a_run_whose_model_never_answered_exits_non_zero_and_says_so(tmp_path: Path, monkeypatch):
    from openai_server import ChatServer, Fault

    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    server = ChatServer().start()
    server.faults = [Fault(401, message="invalid api key")] * 4
    try:
        argv = ["run", "battleOfSexes", "--seeds", "2", "--model", "openai/test-model", "--api-base", server.api_base]
        result = CliRunner().invoke(app, [*argv, "--out", str(tmp_path)])
    finally:
        server.stop()
    assert result.exit_code == 1, result.output
    assert "the model openai/test-model never answered" in result.output
    assert "refused" in result.output  # why: the key, named in one line
    assert len(server.requests) == 2  # one refused call per episode, none retried


SLOW_AGENT = """\
import time

class Slow:
    name = "slow"

    def reset(self, task, observation, info):
        return None

    def act(self, observation, info):
        if info["step"] == 0:
            time.sleep(2)  # thinking
            return "sleep 2"  # running
        return "submit"
"""


def test_a_single_episode_shows_what_it_waits_on_in_a_terminal(tmp_path: Path):
    """The live line (the agent thinking, the command running) in a real terminal (a pty)."""
    import os
    import subprocess
    import sys

    (tmp_path / "slow_agent.py").write_text(SLOW_AGENT)
    leader, follower = os.openpty()
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "120", "TERM": "xterm"}
    researchgym = str(Path(sys.executable).parent / "researchgym")
    argv = [researchgym, "run", "battleOfSexes", "--agent", "slow_agent:Slow", "--out", str(tmp_path / "runs")]
    proc = subprocess.Popen(argv, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the run is over
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=120)
    os.close(leader)
    import re

    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode(errors="replace"))  # colours and cursor moves
    assert proc.returncode == 0, text
    assert "the agent is thinking" in text and "running sleep 2" in text, text
    assert "final score" in text


def test_a_model_module_in_the_current_folder_is_found_and_a_broken_one_is_one_line(tmp_path: Path):
    import subprocess
    import sys

    (tmp_path / "submitter.py").write_text(
        "from researchgym.models.base import ModelResponse\n"
        "class Submitter:\n"
        "    name = 'submitter'\n"
        "    max_output_tokens = 64\n"
        "    def query(self, messages):\n"
        "        return ModelResponse('DISCUSSION\\nsubmit\\n```\\nsubmit\\n```', 10, 5, 0.0, self.name)\n"
        "    def estimate_input_cost(self, messages):\n"
        "        return 0.0\n"
    )
    (tmp_path / "broken.py").write_text("class Model(:\n")
    researchgym = str(Path(sys.executable).parent / "researchgym")
    env = {key: value for key, value in __import__("os").environ.items() if key != "PYTHONPATH"}
    run = [researchgym, "run", "battleOfSexes", "--seed", "0", "--out", "runs"]

    def play(model: str) -> subprocess.CompletedProcess:
        return subprocess.run([*run, "--model", model], cwd=tmp_path, env=env, capture_output=True, text=True)

    found = play("submitter:Submitter")
    assert found.returncode == 0 and "exit status: submitted" in found.stdout, found.stdout + found.stderr
    broken = play("broken:Model")
    assert broken.returncode == 2 and "Traceback" not in broken.stderr, broken.stderr
    assert "--model broken:Model: cannot load it (SyntaxError" in broken.stderr
