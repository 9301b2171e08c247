"""3-SAT heuristic: generated data, a deterministic baseline, correctness enforced, labels and
solver out of the heuristic's reach."""

from __future__ import annotations

import json

import pytest

import researchgym
import researchgym.agents
from researchgym.agents.scripted import ScriptedAgent
from researchgym.runs.episode import run_episode

TASK = "3SATTime"
BASELINE_TEST_DECISIONS = 128_287  # deterministic: the baseline reseeds its generator every call

GREEDY = '''
def heuristic_fn(clauses, assignments, conflict_count, assignment_history, level):
    """Branch on a literal of a shortest open clause, preferring the most frequent literal."""
    best, counts = None, {}
    for clause in clauses:
        open_literals = [lit for lit in clause if abs(lit) not in assignments]
        if not open_literals:
            continue
        for lit in open_literals:
            counts[lit] = counts.get(lit, 0) + 1
        if best is None or len(open_literals) < len(best):
            best = open_literals
    if best is None:
        return None, True
    literal = max(best, key=lambda lit: (counts[lit] + counts.get(-lit, 0), counts[lit]))
    return abs(literal), literal > 0
'''


def write(source: str) -> str:
    return f"cat > heuristic.py <<'PYEOF'\n{source}\nPYEOF"


def validate_with(source: str) -> tuple[str, dict]:
    env = researchgym.make(TASK)
    env.reset(seed=0)
    env.step(write(source))
    observation, _, _, _, info = env.step("validate")
    env.close()
    return observation, info["scores"][-1]


def test_instances_are_seeded_and_labelled():
    spec = researchgym.load_task(TASK)
    spec.ensure_datasets()
    folder = spec.dataset_path(spec.datasets[0])
    rows = json.loads((folder / "validation.json").read_text())
    assert len(rows) == 6000 and rows[0]["index"] == 1
    assert 0.38 < sum(r["is_sat"] for r in rows) / len(rows) < 0.48  # TASKS.md: about 43% SAT
    assert all(len(clause) == 3 and len({abs(l) for l in clause}) == 3 for r in rows[:200] for clause in r["formula"])
    assert len(json.loads((folder / "answers" / "test.json").read_text())) == 24000


@pytest.mark.slow
def test_baseline_and_a_better_heuristic_end_to_end():
    baseline = run_episode(researchgym.make(TASK), researchgym.agents.create_agent("baseline"), seed=0)
    assert baseline.exit_status == "submitted"
    metrics = baseline.scores[-1]["test"]["metrics"]
    assert metrics["Correct"] == 24000 and metrics["Decisions"] == BASELINE_TEST_DECISIONS
    # Time depends on the machine and its load: within a factor of two of the configured figure,
    # which was measured on the reference machine (2 cores).
    configured = researchgym.load_task(TASK).baseline_score
    assert configured / 2 < baseline.final_score < configured * 2
    agent = ScriptedAgent([write(GREEDY), "validate", "submit"], then_submit=False)
    better = run_episode(researchgym.make(TASK), agent, seed=0)
    assert better.exit_status == "submitted"
    assert better.scores[-1]["test"]["metrics"]["Decisions"] < BASELINE_TEST_DECISIONS * 0.8
    assert better.final_score < baseline.final_score


def test_a_heuristic_that_gives_up_is_infeasible_not_silent():
    observation, score = validate_with("def heuristic_fn(clauses, assignments, *rest):\n    return None, True")
    assert score["status"] == "evaluation_format_error" and "wrong SAT/UNSAT answer" in observation


def test_a_heuristic_may_not_modify_the_solver():
    source = ("import solver\nsolver.DPLL.solve = lambda self: True\n"
              "def heuristic_fn(clauses, assignments, *rest):\n    return None, True")
    observation, score = validate_with(source)
    assert score["status"] == "evaluation_format_error" and "changed the solver" in observation


def test_a_slow_heuristic_times_out_per_instance():
    source = "import time\ndef heuristic_fn(clauses, assignments, *rest):\n    time.sleep(60)"
    env = researchgym.make(TASK)
    env.reset(seed=0)
    env.step(write(source))
    observation, _, _, _, info = env.step("validate")
    env.close()
    assert "took longer than 5s" in observation


def test_labels_of_the_test_set_are_hidden():
    snoop = ("import glob, os\nSEEN = sorted(glob.glob('**/*.json', recursive=True))\n"
             "def heuristic_fn(clauses, assignments, *rest):\n    raise RuntimeError(f'SEEN {SEEN}')")
    observation, _ = validate_with(snoop)
    assert "SEEN" in observation and "test.json" not in observation
    env = researchgym.make(TASK)
    env.reset(seed=0)
    listing, *_ = env.step("ls -R data")
    env.close()
    assert "validation.json" in listing and "test.json" not in listing


def test_overwriting_solver_and_evaluate_in_the_workspace_changes_nothing():
    env = researchgym.make(TASK)
    env.reset(seed=0)
    env.step("chmod u+w solver.py evaluate.py; echo 'print(\"{\\\"Time\\\": 0.001}\")' > evaluate.py; "
             "printf 'class DPLL:\\n    def __init__(self, *a): self.num_decisions = 0\\n"
             "    def solve(self): return True\\n' > solver.py")
    _, _, _, _, info = env.step("validate")
    env.close()
    metrics = info["scores"][-1]["validation"]["metrics"]
    assert metrics["Correct"] == 6000 and metrics["Decisions"] > 1000 and metrics["Time"] > 0.5
