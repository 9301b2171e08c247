"""3-SAT heuristic: generated data, a deterministic baseline, correctness enforced, the solver
in the evaluator and the heuristic in a sandbox of its own (the attacks on that split are in
test_redteam_sat.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

import researchgym
import researchgym.agents
from researchgym.agents.scripted import ScriptedAgent
from researchgym.evaluation import evaluate
from researchgym.runs.episode import run_episode

#: Every test here waits out real deadlines (instance limits, stalls): long, so `slow`.
pytestmark = pytest.mark.slow

TASK = "3SATTime"
# Deterministic: the baseline reseeds its generator every call. Both are what the solver gave
# before it moved into the evaluator (128,287 on the test set of the old public seed 202; the
# test set is now drawn from each evaluation's secret seed, see expected_decisions).
BASELINE_VALIDATION_DECISIONS = 32_085
BASELINE_SEED_202_DECISIONS = 128_287
EVAL = Path(researchgym.load_task(TASK).source_dir) / "eval"
STARTER = (EVAL.parent / "starter" / "heuristic.py").read_text()
#: The starter heuristic, burning this much CPU time more per decision (it decides the same).
BURN_S = 0.0003
BURNER = STARTER.replace("import random\n", "import random\nimport time\n").replace(
    "    random.seed(10)",
    f"    end = time.thread_time() + {BURN_S}\n    while time.thread_time() < end:\n        pass\n    random.seed(10)",
)


def task_module(name: str, folder: Path = EVAL):
    spec = importlib.util.spec_from_file_location(f"sat_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def expected_decisions(formulas) -> int:
    """The starter heuristic's decisions on `formulas`, with the solver in this process."""
    solver = task_module("solver")
    heuristic = task_module("heuristic", EVAL.parent / "starter")
    total = 0
    for formula in formulas:
        dpll = solver.DPLL(formula, heuristic.heuristic_fn)
        dpll.solve()
        total += dpll.num_decisions
    return total


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
    assert all(
        len(clause) == 3 and len({abs(literal) for literal in clause}) == 3
        for r in rows[:200]
        for clause in r["formula"]
    )
    instances = task_module("instances")
    assert [r["formula"] for r in rows] == instances.generate(6000, 101)
    # No test file: the evaluator draws the test set from the evaluation's secret seed.
    assert sorted(p.name for p in folder.iterdir()) == [".researchgym-manifest.json", "validation.json"]
    first, again, other = instances.secret_instances(1), instances.secret_instances(1), instances.secret_instances(2)
    assert len(first) == 24000 and first == again and first[:50] != other[:50]


def evaluator_modules():
    """evaluate.py and heuristic_server.py as the evaluation runs them (their folder's modules
    importable by name), without leaving those names behind."""
    names = ("solver", "agent_link", "instances", "isolation", "sat_evaluate", "sat_heuristic_server")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.path[:0] = [str(EVAL), str(EVAL.parent.parent / "_shared")]
    try:
        return task_module("evaluate"), task_module("heuristic_server")
    finally:
        del sys.path[:2]
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def test_the_solver_keeps_its_decisions_and_rebuilt_arguments_are_exact():
    """The search in the evaluator branches exactly as the solver did in the heuristic's process,
    and the arguments the heuristic's server rebuilds from what the evaluator sends of a
    decision are the solver's own, in the same order."""
    spec = researchgym.load_task(TASK)
    spec.ensure_datasets()
    rows = json.loads((spec.dataset_path(spec.datasets[0]) / "validation.json").read_text())
    heuristic = task_module("heuristic", EVAL.parent / "starter")
    evaluate, server = evaluator_modules()
    calls = []

    def rebuilt(clauses, assignments, conflict_count, history, level):
        sent = json.loads(json.dumps(evaluate.question(dpll, dpll.unresolved_mask())))
        again = server.arguments(dpll.clauses, *sent)
        assert [list(a.items()) if isinstance(a, dict) else a for a in again] == [
            clauses,
            list(assignments.items()),
            list(conflict_count.items()),
            history,
            level,
        ]
        assert all(a is b for a, b in zip(again[0], clauses))  # the server's own clause lists
        calls.append(1)
        return heuristic.heuristic_fn(clauses, assignments, conflict_count, history, level)

    solver = task_module("solver")
    decisions = 0
    for row in rows[:1500]:
        dpll = solver.DPLL(row["formula"], rebuilt)
        assert dpll.solve() == row["is_sat"]
        decisions += dpll.num_decisions
    assert decisions == len(calls) > 5000
    assert expected_decisions(r["formula"] for r in rows) == BASELINE_VALIDATION_DECISIONS
    assert expected_decisions(task_module("instances").generate(24000, 202)[:3000]) == 16_204  # the old solver's figure


# Up to 3 minutes here beside three other workers, and CI's machine runs CPU-bound work up to
# 2.5 times slower: a limit for a hang, not the default 300 s.
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_baseline_and_a_better_heuristic_end_to_end():
    env = researchgym.make(TASK)
    baseline = run_episode(env, researchgym.agents.create_agent("baseline"), seed=0)
    assert baseline.exit_status == "submitted"
    metrics = baseline.scores[-1]["test"]["metrics"]
    test_set = task_module("instances").secret_instances(env.unwrapped._eval_seed("test"))
    baseline_test_decisions = expected_decisions(test_set)
    assert metrics["Correct"] == 24000 and metrics["Decisions"] == baseline_test_decisions
    assert abs(baseline_test_decisions - BASELINE_SEED_202_DECISIONS) < 0.05 * BASELINE_SEED_202_DECISIONS
    assert metrics["Time"] == pytest.approx(metrics["SolverCPU"] + metrics["HeuristicCPU"], abs=0.002)
    # Time is CPU time, so the machine's speed and its neighbours' contention for caches and
    # cores change it (CI once measured 42.9 s for the configured 17.3): no absolute figure is
    # compared here, only what the run itself must satisfy.
    assert baseline.final_score > 0
    agent = ScriptedAgent([write(GREEDY), "validate", "submit"], then_submit=False)
    better = run_episode(researchgym.make(TASK), agent, seed=0)
    assert better.exit_status == "submitted"
    # About 23% fewer decisions on the same test draw, which on the reference machine is about
    # 20% less CPU time. The decisions are exact; the two runs' CPU times are not compared, since
    # the solver's own CPU time varies by as much between runs on a loaded machine.
    scored = better.scores[-1]["test"]["metrics"]
    assert scored["Correct"] == 24000
    assert scored["Decisions"] < baseline_test_decisions * 0.8
    assert scored["Time"] == pytest.approx(scored["SolverCPU"] + scored["HeuristicCPU"], abs=0.002)


def test_time_is_the_cpu_time_the_decisions_cost(tmp_path):
    """Time is CPU time, the solver's in the evaluator plus the heuristic's in its sandbox: the
    starter heuristic made to burn 300 µs of CPU per decision decides exactly as the starter
    does, costs the solver the same, and is charged what it burnt on top (a measure that missed
    the heuristic's process, or timed only the solver, would not see it)."""
    spec = researchgym.load_task(TASK)
    spec.ensure_datasets()
    scores = []
    for name, source in (("honest", STARTER), ("burner", BURNER)):
        workspace = tmp_path / name
        workspace.mkdir()
        (workspace / "heuristic.py").write_text(source)
        scores.append(evaluate(spec, workspace, split="validation", seed=5, sandbox="bwrap").metrics)
    honest, burnt = scores
    assert honest["Decisions"] == burnt["Decisions"] == BASELINE_VALIDATION_DECISIONS
    for metrics in scores:
        assert metrics["Time"] == pytest.approx(metrics["SolverCPU"] + metrics["HeuristicCPU"], abs=0.002)
    burnt_s = BASELINE_VALIDATION_DECISIONS * BURN_S  # 9.6 s
    assert burnt["HeuristicCPU"] >= honest["HeuristicCPU"] + 0.8 * burnt_s
    # The burning is not the solver's. The solver's CPU time varies by up to a fifth (about 2 s)
    # between runs on a loaded machine; a wall-clock measure of it would grow by the whole burn.
    assert burnt["SolverCPU"] < honest["SolverCPU"] + 0.5 * burnt_s


def test_a_heuristic_that_gives_up_is_infeasible_not_silent():
    observation, score = validate_with("def heuristic_fn(clauses, assignments, *rest):\n    return None, True")
    assert score["status"] == "evaluation_format_error"
    assert "validation instance 1: heuristic_fn returned no variable (None)" in observation


def test_a_heuristic_cannot_modify_the_solver():
    """The solver the score comes from is the evaluator's: patching the copy beside the heuristic
    changes nothing, and a heuristic that gives up is still refused."""
    source = (
        "import solver\nsolver.DPLL.solve = lambda self: True\n"
        "def heuristic_fn(clauses, assignments, *rest):\n    return None, True"
    )
    observation, score = validate_with(source)
    assert score["status"] == "evaluation_format_error" and "returned no variable" in observation
    starter = (EVAL.parent / "starter" / "heuristic.py").read_text()
    patched = (
        "import solver, sys\nsolver.DPLL.solve = lambda self: True\nsolver.DPLL.search = None\n"
        "sys.modules['solver'] = None\n" + starter
    )
    _, score = validate_with(patched)
    metrics = score["validation"]["metrics"]
    assert metrics["Correct"] == 6000 and metrics["Decisions"] == BASELINE_VALIDATION_DECISIONS


def test_a_slow_heuristic_times_out_per_instance():
    source = "import time\ndef heuristic_fn(clauses, assignments, *rest):\n    time.sleep(60)"
    env = researchgym.make(TASK)
    env.reset(seed=0)
    env.step(write(source))
    observation, _, _, _, info = env.step("validate")
    env.close()
    assert "took longer than 5s" in observation


def test_labels_of_the_test_set_are_hidden():
    snoop = (
        "import glob, os\nSEEN = sorted(glob.glob('**/*.json', recursive=True))\n"
        "def heuristic_fn(clauses, assignments, *rest):\n    raise RuntimeError(f'SEEN {SEEN}')"
    )
    observation, _ = validate_with(snoop)
    assert "SEEN []" in observation and "test.json" not in observation
    env = researchgym.make(TASK)
    env.reset(seed=0)
    listing, *_ = env.step("ls -R data")
    env.close()
    assert "validation.json" in listing and "test.json" not in listing


def test_overwriting_solver_and_evaluate_in_the_workspace_changes_nothing():
    env = researchgym.make(TASK)
    env.reset(seed=0)
    env.step(
        'chmod u+w solver.py evaluate.py; echo \'print("{\\"Time\\": 0.001}")\' > evaluate.py; '
        "printf 'class DPLL:\\n    def __init__(self, *a): self.num_decisions = 0\\n"
        "    def solve(self): return True\\n' > solver.py"
    )
    _, _, _, _, info = env.step("validate")
    env.close()
    metrics = info["scores"][-1]["validation"]["metrics"]
    assert metrics["Correct"] == 6000 and metrics["Decisions"] == BASELINE_VALIDATION_DECISIONS
    assert metrics["Time"] > 0.5
