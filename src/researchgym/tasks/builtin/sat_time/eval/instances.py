"""The 3-SAT instances: seeded uniform random 3-CNF around the phase transition.

n from 5 to 15 variables, a clause-to-variable ratio drawn from 2.5 to 8.5 (across the
transition at ~4.26), three distinct variables a clause with random signs. prepare.py builds
the public validation set with this generator; the evaluator builds the test set with it at
evaluation time, from the evaluation's secret seed.
"""

from __future__ import annotations

import hashlib
import random

#: The number of instances in the test set.
TEST_COUNT = 24_000


def generate(count: int, seed: int) -> list[list[list[int]]]:
    rng = random.Random(seed)
    formulas = []
    for _ in range(count):
        n = rng.randint(5, 15)
        m = max(1, round(rng.uniform(2.5, 8.5) * n))
        formulas.append([[v if rng.random() < 0.5 else -v for v in rng.sample(range(1, n + 1), 3)]
                         for _ in range(m)])
    return formulas


def secret_instances(seed: int) -> list[list[list[int]]]:
    """The test set of an evaluation whose secret seed is `seed`."""
    digest = hashlib.sha256(f"3SATTime:test-instances:{seed}".encode()).digest()
    return generate(TEST_COUNT, int.from_bytes(digest, "little"))
