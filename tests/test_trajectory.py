"""Trajectories: the recorder writes typed records and `end` exactly once, whichever way the
episode ends; the reader gives them back by type (the viewer, report, export and replay use it)."""

from __future__ import annotations

import json

import pytest

import researchgym
from researchgym.runs.trajectory import TrajectoryRecorder, load_trajectory, read_trajectory


def kinds(path):
    return [r["type"] for r in read_trajectory(path)]


@pytest.mark.parametrize(
    "ending, expected",
    [
        ("submit", ["reset", "step", "step", "end"]),
        ("close", ["reset", "step", "end"]),
        ("reset", ["reset", "step", "end"]),
        ("limit", ["reset", "step", "autosubmit", "end"]),
    ],
)
def test_every_way_an_episode_ends_writes_one_end_record(tmp_path, ending, expected):
    env = researchgym.make("battleOfSexes", trajectory_dir=tmp_path)
    try:
        env.reset(seed=0)
        env.step("echo hi")
        path = env.trajectory_path
        if ending == "submit":
            env.step("submit")
        elif ending == "reset":
            env.reset(seed=1)
        elif ending == "limit":
            env.end_episode("cost_limit")
    finally:
        env.close()
    assert kinds(path) == expected
    trajectory = load_trajectory(path)
    assert trajectory.finished and trajectory.reset["task"] == "battleOfSexes" and trajectory.reset["seed"] == 0
    assert [s["action"] for s in trajectory.steps][0] == "echo hi"
    status = {"submit": "submitted", "close": "closed", "reset": "closed", "limit": "autosubmission (cost_limit)"}
    assert trajectory.end["exit_status"] == status[ending]
    assert all(r["v"] == 1 for r in read_trajectory(path))


def test_the_reader_skips_a_torn_line_and_unknown_records(tmp_path):
    path = tmp_path / "t.jsonl"
    recorder = TrajectoryRecorder(path)
    recorder.reset(task="x", seed=3, prompt="p")
    recorder.step(step=1, action="ls", observation="a", model_stats={"api_calls": 1})
    recorder.step(step=2, action="pwd", observation="b", model_stats={"api_calls": 2}, type="forged")
    recorder.end(exit_status="submitted", steps=2, final_score=1.0, scores=[])
    recorder.end(exit_status="twice", steps=2, final_score=0.0, scores=[])  # ignored: end goes once
    recorder.close()
    with open(path, "a") as handle:
        handle.write(json.dumps({"v": 2, "type": "from-the-future"}) + "\n")
        handle.write('{"v": 1, "type": "step", "step": 3, "act')  # torn by a crash
    trajectory = load_trajectory(path)
    assert [s["step"] for s in trajectory.steps] == [1, 2]  # an agent's field cannot change a record's type
    assert trajectory.end["exit_status"] == "submitted" and trajectory.step(2)["action"] == "pwd"
    assert trajectory.model_stats == {"api_calls": 2} and trajectory.autosubmit is None


def test_every_line_is_strict_json_even_with_a_non_finite_number(tmp_path):
    """A NaN or an infinity (say, from an agent's own record) is written as null: the file stays
    JSON for any reader (a browser, jq), and the readers here take null as missing."""
    path = tmp_path / "episode.jsonl"
    recorder = TrajectoryRecorder(path)
    recorder.step(step=1, action="ls", reward=0.0, agent={"cost": float("nan"), "scores": [1.5, float("inf")]})
    recorder.end(exit_status="submitted", steps=1, final_score=float("-inf"), scores=[])
    recorder.close()

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    records = [json.loads(line, parse_constant=refuse) for line in path.read_text().splitlines()]
    assert records[0]["agent"] == {"cost": None, "scores": [1.5, None]}
    assert records[1]["final_score"] is None and records[1]["type"] == "end"
