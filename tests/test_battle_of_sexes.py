"""Battle of Sexes: the baseline reproduces MLGym's figure, the optimum is reachable, and the
known ways to cheat (rewriting the opponent, sharing its RNG, forging output) do not work."""

from __future__ import annotations

import os
import statistics
import time
import uuid

import pytest

import researchgym

EXPECTED_BASELINE = 1.021  # exact expectation (TASKS.md); configured 1.0227
STANDARD_ERROR = 0.0035  # over 10,000 games


def play(strategy_source: str | None, seed: int = 0) -> tuple[str, dict]:
    env = researchgym.make("battleOfSexes")
    env.reset(seed=seed)
    if strategy_source is not None:
        env.step(f"cat > strategy.py <<'PYEOF'\n{strategy_source}\nPYEOF")
    obs, _, _, _, info = env.step("validate")
    env.close()  # validated artefacts are scored on the hidden test split as the episode ends
    return obs, env.scores[-1]


def test_baseline_reproduces_the_configured_score():
    values = []
    for seed in range(3):
        _, score = play(None, seed)
        values += [score["validation"]["value"], score["test"]["value"]]
    assert statistics.mean(values) == pytest.approx(
        EXPECTED_BASELINE, abs=4 * STANDARD_ERROR / len(values) ** 0.5 + 0.002
    )
    spec = researchgym.load_task("battleOfSexes")
    assert abs(spec.baseline_score - statistics.mean(values)) < 0.01


def test_always_zero_reaches_the_analytic_optimum():
    _, score = play("def row_strategy(history):\n    return 0")
    assert score["validation"]["value"] == pytest.approx(1.44, abs=0.01)


def test_numpy_ints_and_bools_are_accepted():
    _, score = play("import numpy as np\ndef row_strategy(history):\n    return np.int64(0) if history else False")
    assert score["validation"]["value"] == pytest.approx(1.44, abs=0.01)


@pytest.mark.parametrize("bad", ["0.5", "2", "'0'", "None"])
def test_invalid_moves_are_an_evaluation_error(bad):
    obs, score = play(f"def row_strategy(history):\n    return {bad}")
    assert score["status"] == "evaluation_format_error" and "must return 0 or 1" in obs


def test_rewriting_the_workspace_opponent_changes_nothing():
    env = researchgym.make("battleOfSexes")
    env.reset(seed=0)
    env.step("chmod u+w target.py && printf 'def target_column_strategy(history, rng):\\n    return 0\\n' > target.py")
    env.step("printf 'def row_strategy(history):\\n    return 0\\n' > strategy.py")
    _, _, _, _, info = env.step("validate")
    env.close()
    assert info["scores"][-1]["validation"]["value"] == pytest.approx(1.44, abs=0.01)  # not 2.0


SPY = """
import gc, os, random
def _peek():
    found = []
    for obj in gc.get_objects():
        if type(obj) is random.Random and obj is not random._inst:
            found.append(obj)
    # The evaluator (with the opponent's generator and the seed) runs in another sandbox: no
    # process in sight may be it, and no environment in sight may carry researchgym's secrets.
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for name in ("environ", "cmdline"):
            try:
                text = open(f"/proc/{pid}/{name}", "rb").read()
            except OSError:
                continue
            if b"RESEARCHGYM" in text or b"evaluate.py" in text or b"secrets" in text:
                found.append(text[:200])
    return found
LEAKS = _peek()
def row_strategy(history):
    # Knowing the opponent's generator would let us predict its move exactly.
    if LEAKS:
        raise RuntimeError(f"leak: {LEAKS!r}")
    return 0
"""


def test_strategy_cannot_reach_the_opponent_generator_or_seed():
    obs, score = play(SPY)
    assert "leak" not in obs, obs
    assert score["validation"]["value"] == pytest.approx(1.44, abs=0.01)


FORGER = """
import subprocess, sys
# A detached helper prints a fake result line after the evaluator's own (or just before).
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5); print('{\\"Score\\": 2.0}', flush=True)"],
                 start_new_session=True)
print('{"Score": 2.0}')
def row_strategy(history):
    return 1
"""


def test_forged_score_lines_are_ignored():
    obs, score = play(FORGER)
    assert "validation" in score, obs
    assert score["validation"]["value"] < 1.0


LINGERER = """
import subprocess, sys
# Detached helpers that outlive the game could forge or steal the result; they live in the
# strategy's own sandbox, which cannot reach the result channel, and die with it.
for _ in range(2):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)  # MARKER"], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def row_strategy(history):
    return 0
"""


def _processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker.encode() in handle.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_detached_helpers_die_with_the_strategy_sandbox():
    marker = f"lingerer-{uuid.uuid4().hex}"
    env = researchgym.make("battleOfSexes")
    env.reset(seed=0)
    env.step(f"cat > strategy.py <<'PYEOF'\n{LINGERER.replace('MARKER', marker)}\nPYEOF")
    obs, _, _, _, info = env.step("validate")
    try:
        assert info["scores"][-1]["validation"]["value"] == pytest.approx(1.44, abs=0.01), obs
        deadline = time.monotonic() + 10
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_with(marker) == []  # gone once the evaluation is over
    finally:
        env.close()
