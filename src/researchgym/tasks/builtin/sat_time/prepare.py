"""Generate the 3-SAT instances: seeded uniform random 3-CNF around the phase transition.

MLGym never published its generator or its seeds (and its dataset.pkl is not in its
repository), so these are rebuilt as TASKS.md suggests: n from 5 to 15 variables, a
clause-to-variable ratio drawn from 2 to 8 (across the transition at ~4.26), three distinct
variables a clause with random signs, labels from an exact solver. The validation set (6,000
instances) is public; the test set (24,000, a different seed) is hidden.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SETS = {"validation": (6_000, 101), "test": (24_000, 202)}


def generate(count: int, seed: int) -> list[list[list[int]]]:
    rng = random.Random(seed)
    formulas = []
    for _ in range(count):
        n = rng.randint(5, 15)
        m = max(1, round(rng.uniform(2.5, 8.5) * n))
        formulas.append([[v if rng.random() < 0.5 else -v for v in rng.sample(range(1, n + 1), 3)]
                         for _ in range(m)])
    return formulas


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
    (target / "answers").mkdir(parents=True)
    for name, (count, seed) in SETS.items():
        report(f"generating and labelling {count:,} {name} instances (seed {seed})")
        rows = [{"index": i, "num_vars": max(abs(l) for c in f for l in c), "formula": f, "is_sat": satisfiable(f)}
                for i, f in enumerate(generate(count, seed), 1)]
        path = target / ("answers" if name == "test" else ".") / f"{name}.json"
        path.write_text(json.dumps(rows))
        report(f"{name}: {sum(r['is_sat'] for r in rows):,} of {count:,} satisfiable")
