"""Generate the public 3-SAT validation set: seeded uniform random 3-CNF around the phase
transition, labelled by an exact solver.

MLGym never published its generator or its seeds (and its dataset.pkl is not in its
repository), so the instances are rebuilt as TASKS.md suggests, with eval/instances.py's
generator: n from 5 to 15 variables, a clause-to-variable ratio drawn from 2.5 to 8.5 (across
the transition at ~4.26), three distinct variables a clause with random signs. The validation
set (6,000 instances, seed 101) is public. There is no test file: the evaluator generates the
24,000 test instances at evaluation time from the evaluation's secret seed, and its solver is
exact, so they need no labels.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

VALIDATION = (6_000, 101)  # count, seed


def _generator():
    """eval/instances.py's generate(), loaded by path (this script runs on its own)."""
    path = Path(__file__).resolve().parent / "eval" / "instances.py"
    spec = importlib.util.spec_from_file_location("sat_instances", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate


def satisfiable(clauses: list[list[int]]) -> bool:
    """An exact DPLL (unit propagation, shortest-clause branching) for the labels."""
    clauses = [set(c) for c in clauses]
    while True:
        if not clauses:
            return True
        if any(not c for c in clauses):
            return False
        unit = next((c for c in clauses if len(c) == 1), None)
        if unit is None:
            break
        literal = next(iter(unit))
        clauses = [c - {-literal} for c in clauses if literal not in c]
    literal = next(iter(min(clauses, key=len)))
    for choice in (literal, -literal):
        if satisfiable([list(c - {-choice}) for c in clauses if choice not in c]):
            return True
    return False


def prepare(target: Path, report) -> None:
    count, seed = VALIDATION
    report(f"generating and labelling {count:,} validation instances (seed {seed})")
    rows = [{"index": i, "num_vars": max(abs(l) for c in f for l in c), "formula": f, "is_sat": satisfiable(f)}
            for i, f in enumerate(_generator()(count, seed), 1)]
    (target / "validation.json").write_text(json.dumps(rows))
    report(f"validation: {sum(r['is_sat'] for r in rows):,} of {count:,} satisfiable")
