"""The training interface: a vector of environments stepped in lock-step by scripted models,
reward modes, a reproducible curriculum, and a run exported as datasets and loaded back."""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import write_task
from openai_server import ChatServer

import researchgym
from researchgym.agents.react import ReactAgent
from researchgym.env import ResearchEnv, normalised_reward
from researchgym.models.scripted import ScriptedModel
from researchgym.runs.runner import Method, RunConfig, Runner
from researchgym.runs.store import Store
from researchgym.training.curriculum import Curriculum
from researchgym.wrappers import EpisodeWrapper, ShapedReward, make_env


def reply(command: str, thought: str = "next") -> str:
    return f"DISCUSSION\n{thought}\n\n```\n{command}\n```\n"


def live_bwraps(known: frozenset[int] = frozenset()) -> set[int]:
    """Live bwrap processes below this test process (started directly or through the vector's
    workers), and those of `known` still alive wherever they are now (one whose parent died
    was handed to another): others on the machine, and zombies, are not counted."""
    parents: dict[int, int] = {}
    bwraps = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(rest[1])
        if name == "bwrap" and rest[0] != "Z":
            bwraps.append(int(entry))
    me = os.getpid()

    def mine(pid: int) -> bool:
        for _ in range(64):
            if pid == me:
                return True
            if pid <= 1 or pid not in parents:
                return False
            pid = parents[pid]
        return False

    return {pid for pid in bwraps if pid in known or mine(pid)}


# ------------------------------------------------------------------ vector environments
SCRIPTS = {
    "tiny": [reply("python solve.py"), reply("validate"), reply("submit")],
    "battleOfSexes": [reply("validate"), reply("submit")],
}


def test_a_vector_of_four_environments_over_two_tasks_plays_to_the_end_and_closes(tmp_path):
    tiny = str(write_task(tmp_path / "tasks"))
    # Only the sandboxes this vector starts: those of earlier tests in this process (closing in
    # the background, or leaked) are left out by their pids, not by a count that could change.
    before = live_bwraps()
    envs = researchgym.make_vec([tiny, "battleOfSexes"], num_envs=4, reward="dense", limits={"max_steps": 10})
    try:
        observations, infos = envs.reset(seed=[0, 1, 2, 3])
        assert len(observations) == 4 and all(isinstance(o, str) and o for o in observations)
        assert list(infos["task"]) == ["tiny", "battleOfSexes", "tiny", "battleOfSexes"]
        started = frozenset(live_bwraps() - before)
        assert len(started) >= 4  # a sandbox each
        agents = []
        for index, task in enumerate(infos["task"]):
            agent = ReactAgent(ScriptedModel(list(SCRIPTS[task])))
            agent.reset(researchgym.load_task(task if task != "tiny" else tiny), observations[index], {})
            agents.append(agent)
        done = [False] * 4
        finished_at = [None] * 4
        returns = [0.0] * 4
        finals: list[float | None] = [None] * 4
        for turn in range(5):
            actions = tuple("true" if done[i] else agents[i].act(observations[i], {}).command for i in range(4))
            observations, rewards, terminations, truncations, infos = envs.step(actions)
            for i in range(4):
                if not done[i]:
                    returns[i] += float(rewards[i])
                    if terminations[i] or truncations[i]:
                        done[i], finished_at[i] = True, turn
                        finals[i] = float(infos["final_score"][i])
            if all(done):
                break
        assert all(done) and finished_at == [2, 1, 2, 1], finished_at
        assert not any(truncations)
        # dense rewards add up to the final normalised score, as the "final" mode would pay it
        for i, task in enumerate(("tiny", "battleOfSexes", "tiny", "battleOfSexes")):
            spec = researchgym.load_task(tiny if task == "tiny" else task)
            assert returns[i] == pytest.approx(normalised_reward(spec, finals[i]), abs=1e-9), (i, returns[i])
        assert finals[0] == 1.0 and finals[2] == 1.0  # the tiny task solved
        assert returns[0] == pytest.approx(1.0)  # baseline 0.5, score 1.0: gain 100%
        # next-step autoreset: the step after an episode's last resets that sub-environment (its
        # action ignored, reward 0) and returns a new task prompt; the game tasks, done a turn
        # earlier, were reset then and are now one step into their next episode
        observations, rewards, terminations, truncations, infos = envs.step(("true",) * 4)
        assert list(rewards) == [0.0] * 4 and not any(terminations)
        assert "Your workspace is" in observations[0] and "Your workspace is" in observations[2]
        assert "(Current step: 1," in observations[1] and "(Current step: 1," in observations[3]
    finally:
        envs.close()
    deadline = time.monotonic() + 60  # a bound on the wait, not a speed: the machine may be busy
    while live_bwraps(started) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not live_bwraps(started) - before, "every sandbox is closed with the vector"


def test_make_vec_names_an_unknown_task_before_starting_workers():
    with pytest.raises(Exception, match="unknown task 'nope'"):
        researchgym.make_vec(["nope"], num_envs=2)


# ------------------------------------------------------------------------ rewards
def _play(task_dir: Path, reward, actions: list[str]) -> tuple[list[float], ResearchEnv | EpisodeWrapper]:
    env = make_env(str(task_dir / "task.yaml"), reward=reward, limits={"max_steps": 10})
    env.reset(seed=0)
    rewards = []
    for action in actions:
        _obs, r, terminated, truncated, _info = env.step(action)
        rewards.append(r)
        if terminated or truncated:
            break
    env.close()
    return rewards, env


def test_reward_modes_final_dense_and_custom(tmp_path):
    task = write_task(tmp_path / "tasks")
    plan = ["printf 'y\\n8\\n0\\n' > submission.csv", "validate", "python solve.py", "validate", "submit"]
    final, _ = _play(task, "final", plan)
    assert final == [0.0, 0.0, 0.0, 0.0, 1.0]
    dense, env = _play(task, "dense", plan)
    # half right is the baseline (0 gain), all right doubles it (+1): the rise is paid at the second
    # validation, and the end pays what is left of the final score (nothing)
    assert dense == pytest.approx([0.0, 0.0, 0.0, 1.0, 0.0])
    assert sum(dense) == pytest.approx(sum(final))
    seen = []

    def per_step_cost(event):
        seen.append(event.kind)
        return -0.01 + (event.final or 0.0)

    custom, env = _play(task, per_step_cost, plan)
    assert custom == pytest.approx([-0.01, -0.01, -0.01, -0.01, 0.99])
    assert seen == ["step", "validate", "step", "validate", "end"]
    shaping = env.get_wrapper_attr("rewarder")
    assert isinstance(env.env, ShapedReward)
    assert shaping.name.startswith("custom:") and "per_step_cost" in shaping.name
    with pytest.raises(ValueError, match="reward must be"):
        make_env(str(task / "task.yaml"), reward="sparse")


def test_dense_rewards_stay_finite_when_the_scores_reach_a_floats_limits():
    """Every normalised score is finite (evaluation refuses the rest), but the last dense step pays
    the final score minus the best validation: with both near a float's limit it must stay a
    finite number, which would otherwise poison every return and average it enters (the final
    score's floor of -1 keeps the difference within range; the guard stays for custom shapes)."""
    from researchgym.training.rewards import Rewarder, RewardEvent

    huge = 1.5e308
    rewarder = Rewarder("dense")
    validated = rewarder(RewardEvent("validate", 1, huge, None, 0.0, None))
    end = rewarder(RewardEvent("end", 2, None, -huge, huge, None))
    assert validated == huge
    assert end == -1.0 - huge
    assert math.isfinite(validated + end) and math.isfinite(end)
    rewarder.reset()
    assert rewarder(RewardEvent("end", 1, None, 0.5, 0.0, None)) == 0.5  # an ordinary end is unchanged


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_reward_function_that_returns_a_non_finite_number_is_named(tmp_path, bad):
    task = write_task(tmp_path / "tasks")

    def broken_bonus(event):
        return bad if event.kind == "validate" else 0.0

    with pytest.raises(ValueError, match=r"reward function .*broken_bonus returned .* validate event at step 2"):
        _play(task, broken_bonus, ["python solve.py", "validate"])


@pytest.mark.parametrize("mode", ["final", "dense"])
def test_a_scored_submission_never_pays_less_than_failing_on_purpose(mode):
    """Mountain Car's returns go negative against a baseline of 1.43: an honest policy scoring
    -80 was worth -57, a deleted checkpoint (no score) -1, so an agent learnt to fail on purpose
    (the red team's finding). The reward of a scored submission has the failure's as its floor;
    the score itself, and its normalised value in reports, stay as they are."""
    from researchgym.training.rewards import FAILED_REWARD, Rewarder, RewardEvent, normalise

    spec = researchgym.load_task("rl-mountain-car-continuous-cpu")
    assert normalise(spec, -79.9966) < -50
    assert normalised_reward(spec, -79.9966) == FAILED_REWARD == normalised_reward(spec, None)
    assert normalised_reward(spec, 2.0 * spec.baseline_score) == pytest.approx(1.0)
    rewarder = Rewarder(mode)
    assert rewarder(RewardEvent("end", 3, None, normalise(spec, -79.9966), 0.0, spec)) == FAILED_REWARD


# --------------------------------------------------------------------- curriculum
def test_the_curriculum_is_reproducible_under_a_seed_and_follows_its_weights():
    tasks = ["a", "b", "c", "d"]
    weights = [1.0, 2.0, 3.0, 4.0]
    first = Curriculum(tasks, weights=weights, seed=7).sample(10_000)
    assert first == Curriculum(tasks, weights=weights, seed=7).sample(10_000)
    assert first != Curriculum(tasks, weights=weights, seed=8).sample(10_000)
    counts = Counter(first)
    for task, weight in zip(tasks, weights):
        p = weight / sum(weights)
        tolerance = 4 * math.sqrt(p * (1 - p) / 10_000)  # four standard errors
        assert abs(counts[task] / 10_000 - p) < tolerance, (task, counts[task])
    assert Curriculum(tasks, mode="fixed").sample(6) == ["a", "b", "c", "d", "a", "b"]
    with pytest.raises(ValueError, match="weights"):
        Curriculum(tasks, weights=[1, 2])


def test_the_difficulty_curriculum_favours_tasks_sometimes_solved(tmp_path):
    store = Store(tmp_path / "run")
    spec = researchgym.load_task("battleOfSexes")
    rows = []
    for task, wins, losses in (("battleOfSexes", 5, 5), ("blotto", 0, 10)):
        for seed in range(wins + losses):
            rows.append((task, "react", "m", seed))
    store.plan("r", rows)
    better = spec.baseline_score + 0.1
    for row in store.episodes():
        beat = row["task"] == "battleOfSexes" and row["seed"] < 5
        store.record(
            row["id"],
            {"exit_status": "submitted", "final_score": better if beat else -10.0, "steps": 3, "scores": []},
            "Score",
        )
    store.close()
    curriculum = Curriculum(["battleOfSexes", "blotto"], mode="difficulty", run_dirs=[tmp_path / "run"], seed=0)
    assert curriculum.rates == {"battleOfSexes": (5, 10), "blotto": (0, 10)}
    probabilities = curriculum.probabilities
    assert probabilities["battleOfSexes"] > probabilities["blotto"] > 0
    draws = Counter(curriculum.sample(10_000))
    assert abs(draws["battleOfSexes"] / 10_000 - probabilities["battleOfSexes"]) < 0.02


# ------------------------------------------------------------------------- export
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    task = write_task(root / "tasks")
    server = ChatServer(
        replies=[
            reply("ls data", "look"),
            reply("python solve.py", "solve"),
            reply("validate", "check"),
            reply("submit", "done"),
            reply("printf 'y\\n0\\n0\\n' > submission.csv", "guess"),
            reply("submit", "done"),
        ]
    ).start()
    try:
        config = RunConfig(
            tasks=[str(task)],
            methods=[Method("react", "openai/test-model")],
            seeds=[0, 1],
            api_base=server.api_base,
            max_episodes=1,
        )
        assert Runner(root / "run", config).run() == {"finished": 2}
    finally:
        server.stop()
    return root / "run"


def test_a_run_exports_as_sft_and_rl_datasets_that_load_back(trained_run, tmp_path):
    datasets = pytest.importorskip("datasets")
    from researchgym.training.export import export_run

    store = Store(trained_run)
    episodes = {row["id"]: row for row in store.episodes("finished")}
    store.close()
    path, rows = export_run(trained_run, tmp_path / "sft", "sft")
    sft = datasets.load_dataset("parquet", data_files=str(path), split="train")
    assert len(sft) == rows == 2
    for row in sft:
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "system" and roles[1] == "user"
        assert roles[2:] == ["assistant", "user"] * (len(roles[2:]) // 2)
        assert row["final_score"] == episodes[row["episode"]]["final_score"]
        assert roles.count("assistant") == episodes[row["episode"]]["steps"]
    assert any("DISCUSSION\nsolve" in m["content"] for r in sft for m in r["messages"])

    path, rows = export_run(trained_run, tmp_path / "rl", "rl")
    rl = datasets.load_dataset("parquet", data_files=str(path), split="train")
    assert len(rl) == rows == sum(e["steps"] for e in episodes.values()) == 6
    for row in rl:
        assert row["prompt"][-1]["role"] == "user" and row["completion"][0]["role"] == "assistant"
        if row["done"]:  # the last step pays the normalised final score (the run's reward mode: final)
            spec = researchgym.load_task(row["task"])
            assert row["reward"] == pytest.approx(normalised_reward(spec, episodes[row["episode"]]["final_score"]))
        else:
            assert row["reward"] == 0.0
    assert sorted(r["reward"] for r in rl if r["done"]) == [-1.0, 1.0]  # all wrong (0 of 2), all right

    path, rows = export_run(trained_run, tmp_path / "best", "sft", min_score=0.5)
    assert rows == 1 and datasets.load_dataset("parquet", data_files=str(path), split="train")[0]["final_score"] == 1.0


def test_the_export_command_line(trained_run, tmp_path):
    from typer.testing import CliRunner

    from researchgym.cli import app

    result = CliRunner().invoke(
        app,
        ["export", str(trained_run), "--format", "rl", "--out", str(tmp_path), "--exit-status", "submitted"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "6 rows" in result.output and (tmp_path / "rl.parquet").is_file()
    bad = CliRunner().invoke(app, ["export", str(tmp_path), "--format", "rl"])
    assert bad.exit_code != 0 and "results.sqlite" in bad.output
    worse = CliRunner().invoke(app, ["export", str(trained_run), "--format", "dpo", "--out", str(tmp_path)])
    assert worse.exit_code != 0 and "--format must be one of sft, rl" in worse.output
