"""Ctrl-C on `researchgym run`: the first stops the run (nothing new starts, running commands are
interrupted, episodes in flight end unscored and resumable) and prints the resume command; a
second leaves at once. Real processes, real sandboxes, real signals."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from researchgym.runs.config import Method, RunConfig
from researchgym.runs.runner import Runner, RunStopped

RESEARCHGYM = str(Path(sys.executable).parent / "researchgym")
#: Guards against a hang only: the episodes' commands would run for ten minutes.
HANG_GUARD_S = 180

AGENTS = textwrap.dedent("""\
    import time

    class SlowCommand:
        '''Runs a ten-minute command: only an interrupt ends it early.'''
        name = "slow_command"

        def reset(self, task, observation, info):
            return None

        def act(self, observation, info):
            return "echo started; sleep 600"

    class SlowThinker:
        '''Thinks for ten minutes before its second move (a model call that does not come back).'''
        name = "slow_thinker"

        def reset(self, task, observation, info):
            return None

        def act(self, observation, info):
            if info["step"] == 0:
                return "echo started"
            time.sleep(600)
            return "submit"
""")


@pytest.fixture(autouse=True, scope="module")
def ctrl_c_reaches_the_run():
    """A suite started in the background (`nohup make test &`) inherits SIGINT ignored, and an
    ignored signal stays ignored across exec: the run would never see Ctrl-C. A handler here is
    reset to the default in each child, so the command line installs its own as from a terminal."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True)
def agents(tmp_path, monkeypatch):
    """The agents above as an importable module, for the command line and this process alike."""
    (tmp_path / "stop_agents.py").write_text(AGENTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("stop_agents", None)


def start_run(tmp_path: Path, *argv: str) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [RESEARCHGYM, "run", *argv, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return proc, out


def wait_for(out: Path, proc: subprocess.Popen, episodes: int, record: str) -> Path:
    """Wait until `episodes` trajectories hold a `record` line; returns the run folder."""
    while True:
        assert proc.poll() is None, proc.communicate()
        found = [p for p in out.glob("run-*/trajectories/**/*.jsonl") if f'"type": "{record}"' in p.read_text()]
        if len(found) >= episodes:
            return next(out.glob("run-*"))
        time.sleep(0.2)


def statuses(run_dir: Path) -> dict[str, int]:
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        return dict(db.execute("SELECT status, count(*) FROM episodes GROUP BY status").fetchall())


def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line names `text` (the run folder): only this test's sandboxes."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_the_first_ctrl_c_stops_a_run_of_several_episodes_and_names_the_resume_command(tmp_path):
    proc, out = start_run(
        tmp_path,
        "battleOfSexes",
        "prisonersDilemma",
        "--seeds",
        "2",
        "--agent",
        "stop_agents:SlowCommand",
        "--max-episodes",
        "2",
        "--max-steps",
        "5",
    )
    run_dir = wait_for(out, proc, episodes=2, record="reset")
    time.sleep(1.0)  # both first commands are running now
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, stderr
    assert "stopping" in stdout + stderr
    assert f"researchgym run --resume {run_dir}" in stderr
    counts = statuses(run_dir)
    assert counts.get("failed", 0) == 0 and counts.get("finished", 0) == 0, counts
    assert counts.get("interrupted") == 2 and counts.get("planned") == 2, counts  # two queued never started
    assert processes_mentioning(str(run_dir)) == []
    # what an interrupted episode left is resumable: the runner plans all four again
    config = RunConfig.from_json((run_dir / "run.json").read_text())
    assert len(Runner(run_dir, config).pending()) == 4


def test_a_second_ctrl_c_leaves_at_once_even_while_an_agent_is_thinking(tmp_path):
    proc, out = start_run(
        tmp_path, "battleOfSexes", "--seeds", "2", "--agent", "stop_agents:SlowThinker", "--max-episodes", "2"
    )
    run_dir = wait_for(out, proc, episodes=2, record="step")  # both agents are thinking now
    proc.send_signal(signal.SIGINT)
    time.sleep(2.0)
    assert proc.poll() is None  # the first Ctrl-C waits for the thinkers, which do not come back
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, stderr
    assert "quit" in stderr and f"researchgym run --resume {run_dir}" in stderr
    # the sandboxes go with the runner (the kernel kills them when it exits: let them finish dying)
    deadline = time.monotonic() + HANG_GUARD_S
    while processes_mentioning(str(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(run_dir)) == []


def test_ctrl_c_during_a_single_episode_stops_it_unscored(tmp_path):
    proc, out = start_run(tmp_path, "battleOfSexes", "--agent", "stop_agents:SlowCommand", "--max-steps", "5")
    run_dir = wait_for(out, proc, episodes=1, record="reset")
    time.sleep(1.0)  # its first command is running now
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, stderr
    assert f"researchgym run --resume {run_dir}" in stderr
    assert statuses(run_dir) == {"interrupted": 1}
    trajectory = next(run_dir.glob("trajectories/**/*.jsonl"))
    end = json.loads(trajectory.read_text().splitlines()[-1])
    assert end["type"] == "end" and end["exit_status"] == "closed"


def test_stop_from_another_thread_ends_the_run_with_the_resume_hint(tmp_path):
    """The library's way (a notebook, a service): Runner.stop() does what Ctrl-C does."""
    import threading

    config = RunConfig(
        tasks=["battleOfSexes"],
        methods=[Method("stop_agents:SlowCommand")],
        seeds=[0, 1, 2],
        max_episodes=1,
        max_steps=5,
    )
    runner = Runner(tmp_path / "run", config)
    started = threading.Event()
    runner.on_event = lambda kind, plan, data: started.set() if kind == "started" else None
    threading.Thread(target=lambda: (started.wait(), time.sleep(2.0), runner.stop()), daemon=True).start()
    with pytest.raises(RunStopped, match="--resume"):
        runner.run()
    assert runner.counts() == {"interrupted": 1, "planned": 2}
