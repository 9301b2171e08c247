"""Fault injection: a model server that fails in every way a real one does, a sandbox killed
in the middle of a step. Nothing finished is lost and every episode ends with a named status."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest
from openai_server import ChatServer, Fault

from researchgym.agents.react import ReactAgent
from researchgym.models import create_model
from researchgym.runs.episode import run_episode
from researchgym.wrappers import make_env

TRUNCATED = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assi'
NOT_JSON = b"<html><body>502 Bad Gateway</body></html>"


def reply(command: str) -> str:
    return f"DISCUSSION\nnext\n\n```\n{command}\n```\n"


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def agent_for(server: ChatServer, attempts: int) -> ReactAgent:
    model = create_model(
        "openai/test-model",
        api_base=server.api_base,
        max_attempts=attempts,
        backoff_s=0.01,
        max_backoff_s=0.05,
        timeout_s=2.0,
    )
    return ReactAgent(model)


def test_every_kind_of_server_failure_is_retried_and_the_episode_goes_on(tiny_task, tmp_path):
    server = ChatServer(
        replies=[reply("python solve.py"), reply("submit")],
        faults=[
            Fault(500),
            Fault(429, retry_after=0.01),
            Fault(503),
            Fault(raw=TRUNCATED),
            Fault(raw=NOT_JSON),
            Fault(delay_s=4.0, raw=TRUNCATED),  # a hang: the client's 2 s timeout fires first
        ],
    ).start()
    try:
        env = make_env(str(tiny_task / "task.yaml"), trajectory_dir=tmp_path)
        result = run_episode(env, agent_for(server, attempts=8), seed=0)
    finally:
        server.stop()
    assert result.exit_status == "submitted" and result.final_score == 1.0, result
    records = lines(env.trajectory_path)
    first = next(r for r in records if r["type"] == "step")
    assert first["model_turns"][0]["retries"] == 6


def test_failures_that_outlast_the_retries_end_with_a_named_status_and_keep_every_step(tiny_task, tmp_path):
    server = ChatServer(replies=[reply("python solve.py")]).start()
    try:
        env = make_env(str(tiny_task / "task.yaml"), trajectory_dir=tmp_path)
        agent = agent_for(server, attempts=3)
        original = server._next

        def fail_after_first():  # the first call succeeds, every later one is cut off
            fault, answer = original()
            return (None, answer) if answer is not None else (Fault(raw=TRUNCATED), None)

        server._next = fail_after_first
        result = run_episode(env, agent, seed=0)
    finally:
        server.stop()
    assert result.exit_status.startswith("autosubmission (api_error") or "api_error" in result.exit_status, result
    records = lines(env.trajectory_path)
    assert [r["type"] for r in records][0] == "reset" and records[-1]["type"] == "end"
    assert any(r["type"] == "step" and r["action"] == "python solve.py" for r in records)
    assert result.final_score == 1.0  # the auto-submission scored the work done before the failure


def test_a_sandbox_killed_mid_step_is_reported_and_the_episode_goes_on(tiny_task, tmp_path):
    env = make_env(str(tiny_task / "task.yaml"), trajectory_dir=tmp_path, limits={"max_steps": 10})
    env.reset(seed=0)
    shell = env.unwrapped._sandbox.shell
    killer = threading.Timer(1.0, lambda: os.killpg(shell.proc.pid, signal.SIGKILL))
    killer.start()
    try:
        observation, _r, terminated, truncated, info = env.step("sleep 8; echo never")
        assert not (terminated or truncated)
        assert "never" not in observation and info["exit_code"] is None, observation
        after, *_ = env.step("python solve.py && echo recovered")
        assert "recovered" in after
        assert "new one was started" in observation + after, (observation, after)
        assert "Validation score" in env.step("validate")[0]
    finally:
        killer.cancel()
        env.close()
    steps = [r for r in lines(env.trajectory_path) if r["type"] == "step"]
    assert [s["step"] for s in steps] == [1, 2, 3]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_full_disk_stops_the_run_cleanly_and_resume_finishes_it(tmp_path, executor):
    import subprocess

    if executor == "ray":
        pytest.importorskip("ray", reason="the ray extra is not installed")
    from researchgym.runs.runner import Method, RunConfig, RunInterrupted, Runner
    from researchgym.runs.store import Store

    run = tmp_path / "run"
    run.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(run)], check=True)
    try:
        config = RunConfig(tasks=["battleOfSexes"], methods=[Method("baseline")], seeds=[0, 1, 2, 3])
        runner = Runner(run, config, executor=executor)
        filler = run / "filler"
        stats = os.statvfs(run)
        with open(filler, "wb") as handle:
            handle.write(b"x" * (stats.f_bavail * stats.f_frsize - 30_000))
        with pytest.raises(RunInterrupted, match="could not be written .*disk is full.*--resume"):
            runner.run()
        filler.unlink()
        assert Runner.resume(run).run() == {"finished": 4}
        assert all(e["exit_status"] == "submitted" for e in Store(run).episodes())
    finally:
        subprocess.run(["umount", "-l", str(run)], check=False)


@pytest.mark.parametrize("fails", [("end",), ("step", "end")], ids=["end line", "step line, then end line at close"])
def test_an_episode_scored_before_its_last_record_failed_is_kept_not_played_again(tmp_path, monkeypatch, fails):
    """The scored step's trajectory line, then the `end` line (written when the episode is
    closed, since the step never got to write it): when writing them fails after the episode
    was scored (text the agent's code chose once made the writer raise), the episode is still
    recorded as finished with its score and the failure named, never `failed` for a resume to
    play again."""
    import warnings

    from researchgym.runs.runner import Method, RunConfig, Runner
    from researchgym.runs.store import Store
    from researchgym.runs.trajectory import TrajectoryRecorder

    def broken(self, **fields):
        raise OSError("the end line could not be written")

    for method in fails:
        monkeypatch.setattr(TrajectoryRecorder, method, broken)
    config = RunConfig(tasks=["battleOfSexes"], methods=[Method("baseline")], seeds=[0], sandbox="bwrap")
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert Runner(run, config).run() == {"finished": 1}
        assert Runner.resume(run).pending() == []
    (episode,) = Store(run).episodes()
    assert episode["exit_status"] in ("submitted", "autosubmission (agent_error)"), episode
    assert episode["final_score"] is not None, episode
    assert "the end line could not be written" in episode["error"]
