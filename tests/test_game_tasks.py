"""Prisoner's Dilemma and Colonel Blotto: baselines reproduce TASKS.md, better strategies score
better, the opponent's code stays hidden, and the evaluation cannot be tampered with."""

from __future__ import annotations

import importlib.util
import random
import statistics
import time

import pytest

import researchgym
import researchgym.agents
from researchgym.agents.scripted import ScriptedAgent
from researchgym.runs.episode import run_episode

# (task, exact expectation of the baseline, standard error over 10,000 games) from TASKS.md
BASELINES = {"prisonersDilemma": (2.37752, 0.005), "blotto": (-0.248, 0.0023)}

BETTER = {
    # Always defecting is the exact optimum against this opponent (2.62514).
    "prisonersDilemma": ("def row_strategy(history):\n    return 1", 2.625, 0.02),
    # The best fixed allocation against a random opponent is about +0.249.
    "blotto": ("def row_strategy(history):\n    return [30, 30, 30, 30, 0, 0]", 0.249, 0.02),
}


def write_strategy(source: str) -> str:
    return f"cat > strategy.py <<'PYEOF'\n{source}\nPYEOF"


@pytest.mark.parametrize("task", sorted(BASELINES))
def test_baseline_agent_reproduces_the_configured_score(task):
    expected, stderr = BASELINES[task]
    values = []
    for seed in range(2):
        started = time.monotonic()
        result = run_episode(researchgym.make(task), researchgym.agents.create_agent("baseline"), seed=seed)
        assert time.monotonic() - started < 30  # validate + submit + the kept copy on test
        assert result.exit_status == "submitted"
        values += [result.final_score, result.scores[0]["validation"]["value"]]
    # Four independent 10,000-game estimates: their mean is within 4 standard errors of the
    # exact expectation (plus the float32 rounding the original also has).
    assert statistics.mean(values) == pytest.approx(expected, abs=4 * stderr / 2 + 0.002)
    configured = researchgym.load_task(task).baseline_score
    assert abs(configured - expected) < 4 * stderr


@pytest.mark.parametrize("task", sorted(BETTER))
def test_a_scripted_agent_beats_the_baseline(task):
    source, optimum, tolerance = BETTER[task]
    agent = ScriptedAgent([write_strategy(source), "validate", "submit"], then_submit=False)
    result = run_episode(researchgym.make(task), agent, seed=7)
    assert result.exit_status == "submitted"
    assert result.final_score == pytest.approx(optimum, abs=tolerance)
    assert result.final_score > researchgym.load_task(task).baseline_score + 0.2


SNOOP = """
import glob, os
found = {p: open(p).read() for p in glob.glob("/home/agent/workspace/*.py") + glob.glob("**/target*", recursive=True)}
raise RuntimeError("SNOOPED " + repr(sorted(found)) + " " + repr([v[:40] for v in found.values()]))
def row_strategy(history):
    return 1
"""


@pytest.mark.parametrize("task", sorted(BASELINES))
def test_the_opponent_code_is_hidden_from_agent_and_strategy(task):
    env = researchgym.make(task)
    env.reset(seed=0)
    listing, *_ = env.step("ls -A; find / -path '*researchgym*' -name 'target.py' 2>/dev/null | head")
    assert "target.py" not in listing
    env.step(write_strategy(SNOOP))
    observation, *_ = env.step("validate")
    assert "SNOOPED" in observation  # the strategy ran and reported what it could read
    assert "target.py" not in observation and "target_column_strategy" not in observation
    env.close()


@pytest.mark.parametrize("task", sorted(BASELINES))
def test_overwriting_the_evaluation_files_in_the_workspace_changes_nothing(task):
    env = researchgym.make(task)
    env.reset(seed=2)
    _, _, _, _, honest = env.step("validate")
    forged = 'import json; print(json.dumps({"Score": 99.0}))'
    env.step(
        f"chmod u+w evaluate.py repeated_game.py strategy_server.py agent_link.py; echo '{forged}' > evaluate.py; "
        f"echo '{forged}' > repeated_game.py; echo '{forged}' > strategy_server.py; echo '{forged}' > agent_link.py; "
        f"printf 'def target_column_strategy(h, r):\\n    return 0\\n' > target.py"
    )
    _, _, _, _, after = env.step("validate")
    env.close()
    assert after["scores"][-1]["validation"]["value"] == honest["scores"][0]["validation"]["value"]


@pytest.mark.parametrize(
    "bad",
    [
        "[120]",
        "[20, 20, 20, 20, 20, 20, 0]",
        "[130, 0, 0, 0, 0, 0]",
        "[-10, 50, 20, 20, 20, 20]",
        "[20.0, 20, 20, 20, 20, 20]",
        "'20,20,20,20,20,20'",
    ],
)
def test_blotto_rejects_invalid_allocations(bad):
    env = researchgym.make("blotto")
    env.reset(seed=0)
    env.step(write_strategy(f"def row_strategy(history):\n    return {bad}"))
    observation, _, _, _, info = env.step("validate")
    env.close()
    assert info["scores"][-1]["status"] == "evaluation_format_error"
    assert "row_strategy returned" in observation


def test_blotto_accepts_numpy_integers_and_fewer_than_120_soldiers():
    env = researchgym.make("blotto")
    env.reset(seed=0)
    env.step(
        write_strategy(
            "import numpy as np\ndef row_strategy(history):\n"
            "    return list(np.array([30, 30, 30, 29, 0, 0], dtype=np.int64))"
        )
    )
    observation, _, _, _, info = env.step("validate")
    env.close()
    assert info["scores"][-1]["validation"]["value"] > 0.2, observation


HUNT = """
import glob, re
tokens, seeds = set(), set()
for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline") + glob.glob("/home/agent/workspace/.*") + glob.glob("/tmp/**", recursive=True):
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError:
        continue
    tokens.update(re.findall(rb"[0-9a-f]{32}", text))
    seeds.update(re.findall(rb'RESEARCHGYM_SEED=[0-9]+|seed.: *[0-9]+', text))
raise RuntimeError(f"HUNTED {len(tokens)} tokens, seeds {sorted(seeds)}")
"""


def test_the_strategy_cannot_find_the_result_token_or_the_seed():
    """The opponent's seed would let a strategy predict its random moves, and the token would
    let a printed line pass for the result: neither may be anywhere the strategy can read."""
    env = researchgym.make("prisonersDilemma")
    env.reset(seed=3)
    env.step(write_strategy(HUNT))
    observation, *_ = env.step("validate")
    env.close()
    assert "HUNTED 0 tokens, seeds []" in observation


def test_the_blotto_opponent_draws_exactly_what_randint_would():
    """The hidden Blotto opponent draws its integers from random bits directly (three times
    faster); its allocations are exactly those of the randint/randrange formulation it had, so
    the configured baseline still reproduces."""
    import importlib.util
    import random

    spec = importlib.util.spec_from_file_location(
        "blotto_target", researchgym.load_task("blotto").path("eval/target.py")
    )
    target = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(target)

    def reference(rng):
        while True:
            draws = [rng.randint(0, 120) for _ in range(6)]
            if sum(draws):
                break
        allocation = [value * 120 // sum(draws) for value in draws]
        allocation[rng.randrange(6)] += 120 - sum(allocation)
        return allocation

    for seed in [*range(50), 2**63 - 1]:
        fast, slow = random.Random(seed), random.Random(seed)
        for _ in range(500):
            allocation = target.target_column_strategy([], fast)
            assert allocation == reference(slow) and sum(allocation) == 120 and min(allocation) >= 0
        assert fast.random() == slow.random()  # and the generators are left in the same state


def blotto_target():
    spec = importlib.util.spec_from_file_location(
        "blotto_target", researchgym.load_task("blotto").path("eval/target.py")
    )
    target = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(target)
    return target


@pytest.mark.parametrize("games", [0, 1, 2, 7, 1000, 10_000])
def test_the_blotto_opponent_moves_a_whole_round_exactly_as_game_by_game(games):
    """The evaluator asks for a round's moves at once (numpy over one block of the generator's
    words): the same allocations as game-by-game calls, and the generator left where they leave
    it, round after round."""
    target = blotto_target()
    for seed in [*range(12), 2**63 - 1]:
        whole, one_by_one = random.Random(seed), random.Random(seed)
        for _ in range(3):
            moves = target.target_column_moves([[]] * games, whole)
            assert moves.shape == (games, 6)
            assert moves.tolist() == [target.target_column_strategy([], one_by_one) for _ in range(games)]
        assert whole.random() == one_by_one.random()


class FirstWordsZero(random.Random):
    """A generator whose first `zeros` 32-bit words are 0 (however they are asked for): it makes
    the Blotto opponent draw all-zero soldiers, which it cannot rescale and draws again."""

    def __init__(self, seed: int, zeros: int) -> None:
        self.used, self.zeros = 0, zeros
        super().__init__(seed)

    def getrandbits(self, k: int) -> int:
        words, first = max(1, -(-k // 32)), self.used
        value, self.used = super().getrandbits(k), self.used + words
        for index in range(words):
            if first + index < self.zeros:
                value &= ~(((1 << min(k, 32)) - 1) << (32 * index))
        return value

    def getstate(self):
        return super().getstate(), self.used

    def setstate(self, state) -> None:
        super().setstate(state[0])
        self.used = state[1]


def test_an_all_zero_draw_is_redrawn_in_the_whole_round_form_too():
    target = blotto_target()
    whole, one_by_one = FirstWordsZero(5, zeros=6), FirstWordsZero(5, zeros=6)
    moves = target.target_column_moves([[]] * 50, whole)
    assert moves.tolist() == [target.target_column_strategy([], one_by_one) for _ in range(50)]
    assert whole.random() == one_by_one.random()
    assert sorted(moves[0].tolist()) != [0] * 6 and moves.sum(axis=1).tolist() == [120] * 50


FAILS_MID_GAME = {
    "raises in round 5": (
        "    if len(history) == 4:\n        raise RuntimeError('boom in round 5')\n",
        ["row_strategy raised an exception", "boom in round 5"],
    ),
    "oversized allocation in round 10": (
        "    if len(history) == 9:\n        return [200, 0, 0, 0, 0, 0]\n",
        ["round 10, game 1: row_strategy returned [200, 0, 0, 0, 0, 0]"],
    ),
    "exits in round 4": (
        "    if len(history) == 3:\n        import os; os._exit(3)\n",
        ["failed to answer round 4", "exited before it could answer round 4"],
    ),
}


@pytest.mark.parametrize("case", sorted(FAILS_MID_GAME))
def test_a_strategy_failing_mid_game_is_named_with_its_round(case):
    """The rounds are pipelined (a round's answer is checked while the strategy plays the
    next): a fault is still named with the round it happened in, and nothing is scored."""
    body, expected = FAILS_MID_GAME[case]
    env = researchgym.make("blotto")
    env.reset(seed=0)
    env.step(write_strategy("def row_strategy(history):\n" + body + "    return [20, 20, 20, 20, 20, 20]"))
    observation, _, _, _, info = env.step("validate")
    env.close()
    assert info["scores"][-1]["status"] == "evaluation_format_error", observation
    for text in expected:
        assert text in observation, observation


def test_evaluate_py_runs_by_hand_in_the_workspace():
    """The starter files hold the strategy server and the link, so `python evaluate.py` plays
    by hand (Battle of Sexes, whose opponent is public) or says the opponent is hidden."""
    env = researchgym.make("battleOfSexes")
    env.reset(seed=0)
    env.step(write_strategy("def row_strategy(history):\n    return 0"))
    observation, *_ = env.step("python evaluate.py --games 2000")
    env.close()
    assert '"Score": 1.4' in observation, observation
    env = researchgym.make("prisonersDilemma")
    env.reset(seed=0)
    observation, *_ = env.step("python evaluate.py --games 100")
    env.close()
    assert "the opponent (target.py) is not in" in observation and "run `validate`" in observation
