"""ResearchEnv through Gymnasium: API conformance, scoring outside the sandbox, trajectories."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

import researchgym
from researchgym.env import ResearchEnv, normalised_reward
from researchgym.runs.trajectory import read_trajectory
from researchgym.tasks.loader import load_task_file


def test_check_env_passes_on_battle_of_sexes():
    env = gymnasium.make("researchgym/BattleOfSexes-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any checker warning is a failure
        check_env(env.unwrapped)
    env.close()


def test_gymnasium_make_drives_an_episode(tmp_path: Path):
    env = gymnasium.make("researchgym/BattleOfSexes-v0", trajectory_dir=tmp_path)
    obs, info = env.reset(seed=3)
    assert "Battle of the Sexes" in obs and info["step"] == 0
    obs, reward, terminated, truncated, info = env.step("ls")
    assert "strategy.py" in obs and reward == 0.0 and not terminated and not truncated
    obs, reward, terminated, truncated, info = env.step("validate")
    assert "Validation score: Score" in obs and not terminated
    assert info["scores"][0]["validation"]["value"] == pytest.approx(1.021, abs=0.015)
    obs, reward, terminated, truncated, info = env.step("cd /tmp && submit")
    assert terminated and not truncated and info["exit_status"] == "submitted"
    assert info["final_score"] == pytest.approx(1.021, abs=0.015)
    assert reward == pytest.approx(normalised_reward(env.unwrapped.task, info["final_score"]))
    with pytest.raises(RuntimeError, match="reset"):
        env.step("ls")
    env.close()


def test_researchgym_make_and_public_api():
    env = researchgym.make("battleOfSexes", sandbox="bwrap")
    assert isinstance(env.unwrapped, ResearchEnv) and env.task.id == "battleOfSexes"
    assert researchgym.load_task("BattleOfSexes").metric.name == "Score"
    env.close()


def test_validation_and_hidden_test_scores_are_recorded_separately():
    env = researchgym.make("battleOfSexes")
    env.reset(seed=5)
    _, _, _, _, info = env.step("validate")
    # The test score of a validation is computed only once the agent can no longer act.
    assert info["scores"][0]["test"] == {"status": "pending"}
    _, _, terminated, _, info = env.step("submit")
    entry = info["scores"][0]
    assert entry["validation"]["split"] == "validation" and entry["test"]["split"] == "test"
    assert entry["validation"]["value"] != entry["test"]["value"]  # different games
    assert entry["test"]["value"] == info["scores"][1]["test"]["value"]  # same artefact, same games
    # The same seed gives the same scores: evaluation is reproducible.
    env.reset(seed=5)
    _, _, _, _, again = env.step("validate")
    assert again["scores"][0]["validation"]["value"] == entry["validation"]["value"]
    env.close()
    assert env.scores[0]["test"]["value"] == entry["test"]["value"]


def test_step_limit_truncates_and_autosubmits(tmp_path: Path):
    env = researchgym.make("battleOfSexes", limits={"max_steps": 2}, trajectory_dir=tmp_path)
    env.reset(seed=1)
    _, reward, terminated, truncated, info = env.step("echo one")
    assert not (terminated or truncated)
    obs, reward, terminated, truncated, info = env.step("echo two")
    assert truncated and not terminated
    assert info["exit_status"] == "autosubmission (max_steps)"
    assert info["final_score"] is not None and "auto-submitting" in obs
    assert info["scores"][-1]["kind"] == "autosubmit"
    env.close()


def test_trajectory_has_one_flushed_line_per_step(tmp_path: Path):
    env = researchgym.make("battleOfSexes", trajectory_dir=tmp_path)
    env.reset(seed=2)
    env.step("echo first")
    path = env.trajectory_path
    # Written before the next step: a crash now would lose nothing.
    lines = path.read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["reset", "step"]
    env.step("validate")
    env.step("submit")
    records = list(read_trajectory(path))
    assert [r["type"] for r in records] == ["reset", "step", "step", "step", "end"]
    step = records[1]
    assert step["action"] == "echo first" and step["observation"].startswith("first\n")
    assert step["exit_code"] == 0 and step["step_s"] >= step["command_s"] >= 0
    assert records[2]["scores"][0]["kind"] == "validate"
    assert records[-1]["exit_status"] == "submitted" and records[-1]["final_score"] is not None
    env.close()


def test_agent_sandbox_never_sees_evaluation_or_hidden_files(tiny_task: Path):
    spec = load_task_file(tiny_task)
    env = ResearchEnv(spec)
    env.reset(seed=0)
    listing, *_ = env.step("ls -A; ls -A data")
    assert "secret.txt" not in listing and "evaluate.py" not in listing
    assert "train.csv" in listing and "test.csv" in listing
    leaked, *_ = env.step(f"cat data/answers.csv {tiny_task}/eval/secret.txt {tiny_task}/data/answers.csv 2>&1")
    assert "TOP-SECRET" not in leaked and "\n8\n10" not in leaked
    env.close()


def test_csv_task_scores_outside_and_survives_stray_output(tiny_task: Path):
    env = ResearchEnv(load_task_file(tiny_task))
    env.reset(seed=0)
    obs, *_ = env.step("validate")
    assert "submission_not_found" in obs and "submission.csv" in obs
    env.step("python solve.py")
    obs, *_ = env.step("validate")
    assert "accuracy = 1" in obs
    solved = env.scores[-1]
    # Overwriting the evaluation file inside the workspace changes nothing.
    env.step("echo 'print(\"{\\\"accuracy\\\": 99}\")' > evaluate.py; echo 'y\n0\n0' > submission.csv")
    obs, reward, terminated, _, info = env.step("submit")
    assert terminated and info["final_score"] == 0.0
    assert reward == pytest.approx(-1.0)  # (0 - 0.5) / 0.5
    # The validated artefact was kept: its test score is that of the solution, not the later file.
    validation, test = solved["validation"]["metrics"], solved["test"]["metrics"]
    assert validation["split"] == "validation" and test["split"] == "test" and test["accuracy"] == 1.0
    # Test labels are withheld from the evaluator while validating, given when testing.
    assert validation["saw_test_labels"] is False and test["saw_test_labels"] is True
    env.close()


def test_missing_submission_ends_with_named_status(tiny_task: Path):
    env = ResearchEnv(load_task_file(tiny_task))
    env.reset(seed=0)
    obs, reward, terminated, _, info = env.step("submit")
    assert terminated and info["exit_status"] == "submission_not_found"
    assert info["final_score"] is None and reward == -1.0
    env.close()


def test_artefact_symlink_out_of_workspace_is_refused(tiny_task: Path):
    env = ResearchEnv(load_task_file(tiny_task), sandbox="local")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env.reset(seed=0)
    env.step(f"ln -s {tiny_task}/data/answers.csv submission.csv")
    obs, *_, info = env.step("validate")
    assert "submission.csv is a symbolic link" in obs and "submission_not_found" in obs
    env.close()


def test_timeouts_are_reported_in_observation_and_info():
    env = researchgym.make("battleOfSexes", limits={"command_timeout_s": 1})
    env.reset(seed=0)
    obs, _, _, _, info = env.step("sleep 30")
    assert info["timed_out"] and "timed out after 1s" in obs
    obs, *_ = env.step("echo fine")
    assert obs.startswith("fine\n\n(Current step: 2")
    env.close()


def test_reward_normalisation_is_relative_to_baseline():
    spec = researchgym.load_task("battleOfSexes")
    b = spec.baseline_score
    assert normalised_reward(spec, b) == 0.0
    assert normalised_reward(spec, 2 * b) == pytest.approx(1.0)
    assert normalised_reward(spec, None) == -1.0
    minimise = spec.model_copy(update={"metric": spec.metric.model_copy(update={"direction": "minimize"})})
    assert normalised_reward(minimise, b / 2) == pytest.approx(0.5)


def test_end_episode_autosubmits_with_reason(tmp_path: Path):
    env = researchgym.make("battleOfSexes", trajectory_dir=tmp_path)
    env.reset(seed=0)
    obs, reward, info = env.end_episode("cost_limit")
    assert info["exit_status"] == "autosubmission (cost_limit)" and info["final_score"] is not None
    types = [r["type"] for r in read_trajectory(env.trajectory_path)]
    assert types == ["reset", "autosubmit", "end"]
    env.close()


def test_a_fifo_or_symlink_as_tool_state_cannot_hang_the_host():
    env = researchgym.make("battleOfSexes", limits={"command_timeout_s": 5})
    env.reset(seed=0)
    env.step("rm -f /run/researchgym/state.json; mkfifo /run/researchgym/state.json")
    obs, *_ = env.step("echo still-responsive")  # reading the footer state must not block
    assert obs.startswith("still-responsive") and "(Open file: n/a)" in obs
    env.step("rm -f /run/researchgym/state.json; ln -s /etc/passwd /run/researchgym/state.json")
    obs, *_ = env.step("echo ok")
    assert "(Open file: n/a)" in obs
    env.close()
