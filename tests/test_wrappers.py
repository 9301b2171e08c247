"""The layers around ResearchEnv: reward shaping, the step footer and the trajectory, as wrappers.

The trajectory is the outermost layer, so what it records is what the agent got."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import pytest
from conftest import write_task

import researchgym
from researchgym.env import ResearchEnv
from researchgym.runs.episode import run_episode
from researchgym.runs.trajectory import load_trajectory
from researchgym.wrappers import RecordEpisode, ShapedReward, StepFooter, make_env

HALF_RIGHT = "printf 'y\\n8\\n0\\n' > submission.csv"  # the baseline: no gain
PLAN = [HALF_RIGHT, "validate", "python solve.py", "validate", "submit"]


@pytest.fixture
def task(tmp_path: Path) -> str:
    return str(write_task(tmp_path / "tasks") / "task.yaml")


def layers(env: gymnasium.Env) -> list[type]:
    found = [type(env)]
    while isinstance(env, gymnasium.Wrapper):
        env = env.env
        found.append(type(env))
    return found


def test_make_env_stacks_only_the_layers_asked_for(task, tmp_path):
    full = make_env(task, reward="dense", footer=True, trajectory_dir=tmp_path / "t")
    bare = make_env(task, footer=False)
    try:
        assert layers(full) == [RecordEpisode, StepFooter, ShapedReward, ResearchEnv]
        assert layers(bare) == [ResearchEnv]
    finally:
        full.close()
        bare.close()


def test_the_trajectory_records_the_observation_and_reward_the_agent_got(task, tmp_path):
    env = make_env(task, reward="dense", trajectory_dir=tmp_path / "t", limits={"max_steps": 10})
    seen: list[tuple[str, float]] = []
    prompt, info = env.reset(seed=0)
    assert info["reward_mode"] == "dense"
    for action in PLAN:
        observation, reward, terminated, truncated, info = env.step(action)
        seen.append((observation, reward))
    env.close()
    assert terminated and info["exit_status"] == "submitted"
    assert [reward for _, reward in seen] == pytest.approx([0.0, 0.0, 0.0, 1.0, 0.0])  # shaped, not final
    # The footer ends every observation but the last, and only the wrapper adds it.
    assert all("(Current step:" in observation for observation, _ in seen[:-1])
    assert "(Current step:" not in seen[-1][0]
    trajectory = load_trajectory(env.trajectory_path)
    assert trajectory.reset["prompt"] == prompt and trajectory.reset["reward"] == "dense"
    assert [(s["observation"], s["reward"]) for s in trajectory.steps] == seen
    assert trajectory.end["exit_status"] == "submitted" and trajectory.end["final_score"] == 1.0
    assert info["trajectory"] == str(env.trajectory_path)


def test_without_the_footer_the_observation_is_the_commands_output(task):
    env = make_env(task, footer=False)
    env.reset(seed=0)
    observation, *_ = env.step("echo plain")
    env.close()
    assert observation.rstrip("\n") == "plain"


@pytest.mark.parametrize("how", ["reset", "close"])
def test_an_episode_left_running_ends_once_as_closed(task, tmp_path, how):
    env = make_env(task, trajectory_dir=tmp_path / "t")
    env.reset(seed=0)
    env.step("python solve.py && validate")
    first = env.trajectory_path
    if how == "reset":
        env.reset(seed=1)
        assert env.trajectory_path != first
    env.close()
    env.close()  # twice is harmless
    records = load_trajectory(first)
    assert records.end["exit_status"] == "closed"
    assert records.end["scores"][0]["test"]["value"] == 1.0  # the validated work was scored on test
    assert sum(1 for line in first.read_text().splitlines() if '"type": "end"' in line) == 1


def test_ending_early_writes_an_autosubmission_with_the_shaped_reward(task, tmp_path):
    env = make_env(task, reward="dense", trajectory_dir=tmp_path / "t")
    env.reset(seed=0)
    env.step("python solve.py")
    env.step("validate")  # +1 paid now
    _, reward, _ = env.end_episode("cost_limit")
    assert reward == pytest.approx(0.0)  # dense: the final score was already paid by the validation
    env.close()
    records = load_trajectory(env.trajectory_path)
    assert records.autosubmit["reason"] == "cost_limit" and records.autosubmit["reward"] == pytest.approx(0.0)
    assert records.end["exit_status"] == "autosubmission (cost_limit)" and records.end["final_score"] == 1.0


def test_a_finished_episode_cannot_be_ended_twice(task, tmp_path):
    env = make_env(task, trajectory_dir=tmp_path / "t")
    env.reset(seed=0)
    env.step("python solve.py")
    _, first_reward, _ = env.end_episode("time_limit")
    _, second_reward, info = env.end_episode("time_limit")
    env.close()
    assert first_reward == 1.0 and second_reward == 0.0 and info["exit_status"] == "autosubmission (time_limit)"
    types = [line for line in env.trajectory_path.read_text().splitlines() if '"type": "autosubmit"' in line]
    assert len(types) == 1


def test_gymnasium_make_builds_the_same_stack(tmp_path):
    env = gymnasium.make("researchgym/BattleOfSexes-v0", reward="dense", trajectory_dir=tmp_path)
    assert layers(env)[-4:] == [RecordEpisode, StepFooter, ShapedReward, ResearchEnv]
    assert env.get_wrapper_attr("trajectory_path") is None  # no episode yet
    env.close()


def test_run_episode_names_the_player_and_passes_the_agents_tool_settings(task, tmp_path):
    class Lints:
        name = "lints"

        class config:
            @staticmethod
            def tool_env() -> dict[str, str]:
                return {"RESEARCHGYM_LINT": "E9"}

        def reset(self, task, observation, info):
            return None

        def act(self, observation, info):
            return "echo lint=$RESEARCHGYM_LINT" if info["step"] == 0 else "submit"

    env = researchgym.make(task, trajectory_dir=tmp_path / "t")
    run_episode(env, Lints(), seed=0)
    records = load_trajectory(env.trajectory_path)
    assert records.reset["run_info"] == {"agent": "lints", "model": None}
    assert "run_info" not in records.reset["options"]
    assert records.steps[0]["observation"].startswith("lint=E9")


def test_a_bad_reward_mode_is_refused_before_any_sandbox_starts(task):
    with pytest.raises(ValueError, match="reward must be"):
        make_env(task, reward="sparse")
