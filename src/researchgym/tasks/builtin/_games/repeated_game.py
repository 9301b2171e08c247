"""The engine shared by the repeated-game tasks (Battle of Sexes, Prisoner's Dilemma, Blotto).

The agent's `row_strategy` runs in a child process; the opponent runs here, with its own
random generator. The child cannot reach the opponent, its generator or its seed:

- the seed and the result token arrive in the evaluation's secrets file, read and deleted before
  the child starts (never in the environment, which any process could read from the shell's
  /proc/<pid>/environ);
- this process is non-dumpable, so the child cannot read its memory or /proc/<pid>/environ;
- the opponent's source is imported here, then deleted from the evaluation folder before the
  child starts, so a strategy cannot read it (and print it in a failing validation);
- every process the strategy leaves behind is killed before the result line is printed, and the
  line carries the token, so nothing the strategy prints can pass for the result.

Games are played in lock-step (one message per round for all games), so 10,000 games cost
ten round trips, not a hundred thousand.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from isolation import kill_everyone_else, no_memory_access, take_secrets

CHILD = r'''
import json, operator, os, random, sys, traceback
proto = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # anything the strategy prints goes to stderr, not into the protocol
sys.stdout = sys.stderr
setup = json.loads(sys.stdin.readline())
rule = setup["moves"]
random.seed(setup["seed"])
try:
    import numpy
    numpy.random.seed(setup["seed"] % 2**32)
except ImportError:
    pass

def fail(message):
    proto.write(json.dumps({"error": message}) + "\n")
    proto.flush()
    sys.exit(0)

def check(move):
    if rule["kind"] == "binary":
        try:
            value = operator.index(move)
        except TypeError:
            raise TypeError(f"row_strategy returned {move!r} ({type(move).__name__}); it must return 0 or 1") from None
        if value not in (0, 1):
            raise ValueError(f"row_strategy returned {value}; it must return 0 or 1")
        return value
    fields, total = rule["fields"], rule["total"]
    if not isinstance(move, (list, tuple)) or len(move) != fields:
        raise ValueError(f"row_strategy returned {move!r}; it must return a list of exactly {fields} integers")
    try:
        values = [operator.index(x) for x in move]
    except TypeError:
        raise TypeError(f"row_strategy returned {move!r}; every entry must be an integer") from None
    if min(values) < 0 or sum(values) > total:
        raise ValueError(f"row_strategy returned {values}; entries must be >= 0 and sum to at most {total}")
    return values

try:
    sys.path.insert(0, os.getcwd())
    from strategy import row_strategy
except BaseException:
    fail("could not import row_strategy from strategy.py:\n" + traceback.format_exc())
histories = [[] for _ in range(setup["games"])]
for line in sys.stdin:
    columns = json.loads(line)
    if columns:
        for history, col in zip(histories, columns):
            history[-1] = (history[-1][0], col)
    moves = []
    try:
        for history in histories:
            move = check(row_strategy(list(history)))
            moves.append(move)
            history.append((move, None))
    except BaseException:
        fail(traceback.format_exc())
    proto.write(json.dumps(moves) + "\n")
    proto.flush()
'''

Opponent = Callable[[list, random.Random], Any]
Payoff = Callable[[Any, Any], float]


def load_opponent(folder: str, module: str, function: str) -> Opponent:
    """Import the opponent, then delete its source so the strategy cannot read it."""
    sys.path.insert(0, folder)
    opponent = getattr(__import__(module), function)
    sys.path.remove(folder)
    for leftover in (os.path.join(folder, f"{module}.py"), os.path.join(folder, "__pycache__")):
        if os.path.isdir(leftover):
            shutil.rmtree(leftover, ignore_errors=True)
        elif os.path.exists(leftover):
            os.remove(leftover)
    return opponent


def play(opponent: Opponent, payoff: Payoff, moves: dict[str, Any], seed: int, games: int,
         rounds: int) -> tuple[float, int]:
    """Play every game; return the score and how many leftover processes had to be killed."""
    opponent_rng = random.Random(seed)
    child_seed = int.from_bytes(hashlib.sha256(f"row:{seed}".encode()).digest()[:8], "little")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        start_new_session=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("RESEARCHGYM_")},
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps({"seed": child_seed, "games": games, "moves": moves}) + "\n")
    histories: list[list[tuple[Any, Any]]] = [[] for _ in range(games)]
    payoffs = np.zeros((games, rounds), dtype=np.float32)
    columns: list[Any] = []
    try:
        for round_index in range(rounds):
            child.stdin.write(json.dumps(columns) + "\n")
            child.stdin.flush()
            reply = child.stdout.readline()
            if not reply:
                raise RuntimeError("the strategy process died (see the error output above)")
            rows = json.loads(reply)
            if isinstance(rows, dict):
                raise RuntimeError(rows["error"])
            columns = []
            for game, (history, row) in enumerate(zip(histories, rows)):
                col = opponent(list(history), opponent_rng)
                payoffs[game, round_index] = payoff(row, col)
                history.append((row, col))
                columns.append(col)
    finally:
        child.kill()
        child.wait()
        leftovers = kill_everyone_else()
    game_scores = payoffs.mean(axis=1, dtype=np.float32)
    return float(game_scores.mean(dtype=np.float32)), leftovers


def main(*, payoff: Payoff, moves: dict[str, Any], opponent: str = "target:target_column_strategy") -> None:
    """Command line of every game task's evaluate.py; prints one signed JSON result line."""
    no_memory_access()
    parser = argparse.ArgumentParser(description="Score strategy.py:row_strategy against the opponent.")
    parser.add_argument("--split", default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    parser.add_argument("--games", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    token, seed = take_secrets()
    if seed is None:
        seed = random.SystemRandom().randrange(2**63)
    module, _, function = opponent.partition(":")
    try:
        opponent_fn = load_opponent(os.path.dirname(os.path.abspath(sys.argv[0])), module, function)
        score, leftovers = play(opponent_fn, payoff, moves, seed, args.games, args.rounds)
    except Exception as exc:  # report, do not crash silently
        print(f"evaluation failed: {exc}", file=sys.stderr)
        print(json.dumps({"error": str(exc), "token": token}))
        sys.exit(1)
    print(json.dumps({"Score": score, "split": args.split, "leftover_processes_killed": leftovers, "token": token}))
