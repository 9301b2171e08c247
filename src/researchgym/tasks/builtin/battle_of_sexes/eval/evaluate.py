"""Score a row strategy in the repeated Battle of Sexes.

    python evaluate.py [--split validation|test] [--games 10000] [--rounds 10]

The strategy (`strategy.py: row_strategy`) runs in a child process and the opponent
(`target.py: target_column_strategy`) here, each with its own random generator. The child
cannot see the opponent's generator or its seed: the seed arrives in the RESEARCHGYM_SEED
environment variable, which is removed before the child starts, and this process is marked
non-dumpable so the child cannot read its memory. The last line printed is a JSON object with
the metric `Score` (the row player's mean payoff per round) and the RESEARCHGYM_RESULT_TOKEN,
which the strategy never sees, so a line it prints cannot pass for the result.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import random
import signal
import subprocess
import sys

import numpy as np

# PAYOFFS[row_move][col_move] = (row payoff, column payoff)
PAYOFFS = ((2, 1), (0, 0)), ((0, 0), (1, 2))

CHILD = r'''
import json, operator, os, random, sys, traceback
proto = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # anything the strategy prints goes to stderr, not into the protocol
sys.stdout = sys.stderr
setup = json.loads(sys.stdin.readline())
random.seed(setup["seed"])
try:
    import numpy
    numpy.random.seed(setup["seed"] % 2**32)
except ImportError:
    pass
try:
    sys.path.insert(0, os.getcwd())
    from strategy import row_strategy
except BaseException:
    proto.write(json.dumps({"error": "could not import row_strategy from strategy.py:\n" + traceback.format_exc()}) + "\n")
    proto.flush()
    sys.exit(0)
histories = [[] for _ in range(setup["games"])]
for line in sys.stdin:
    columns = json.loads(line)
    if columns:
        for history, col in zip(histories, columns):
            history[-1] = (history[-1][0], col)
    moves = []
    try:
        for history in histories:
            move = row_strategy(list(history))
            try:
                move = operator.index(move)
            except TypeError:
                raise TypeError(f"row_strategy returned {move!r} ({type(move).__name__}); it must return 0 or 1") from None
            if move not in (0, 1):
                raise ValueError(f"row_strategy returned {move}; it must return 0 or 1")
            moves.append(move)
            history.append((move, None))
    except BaseException:
        proto.write(json.dumps({"error": traceback.format_exc()}) + "\n")
        proto.flush()
        sys.exit(0)
    proto.write(json.dumps(moves) + "\n")
    proto.flush()
'''


def _no_memory_access() -> None:
    """PR_SET_DUMPABLE=0: a same-user process can no longer read our memory or environment."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(4, 0, 0, 0, 0)
    except OSError:
        pass


def _kill_everyone_else() -> int:
    """Kill every process the strategy may have left (a detached one could otherwise forge or
    steal the result line). Only inside a bubblewrap pid namespace, where the namespace holds
    nothing but this evaluation; never on a host (the `local` sandbox)."""
    try:
        with open("/proc/1/comm") as handle:
            if handle.read().strip() != "bwrap":
                return 0
    except OSError:
        return 0
    spare = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        with open(f"/proc/{pid}/stat") as handle:
            pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        spare.add(pid)
    killed: set[int] = set()
    for _ in range(100):
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in spare]
        if not others:
            break
        killed.update(others)
        for other in others:
            try:
                os.kill(other, signal.SIGKILL)
            except OSError:
                pass
    return len(killed)


def play(seed: int, games: int, rounds: int) -> tuple[float, int]:
    """Play every game; return the score and how many leftover processes had to be killed."""
    from target import target_column_strategy

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
    child.stdin.write(json.dumps({"seed": child_seed, "games": games}) + "\n")
    histories: list[list[tuple[int, int]]] = [[] for _ in range(games)]
    payoffs = np.zeros((games, rounds), dtype=np.float32)
    columns: list[int] = []
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
                col = target_column_strategy(list(history), opponent_rng)
                payoffs[game, round_index] = PAYOFFS[row][col][0]
                history.append((row, col))
                columns.append(col)
    finally:
        child.kill()
        child.wait()
        leftovers = _kill_everyone_else()
    game_scores = payoffs.mean(axis=1, dtype=np.float32)
    return float(game_scores.mean(dtype=np.float32)), leftovers


def main() -> None:
    _no_memory_access()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    parser.add_argument("--games", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    seed_text = os.environ.pop("RESEARCHGYM_SEED", None)
    token = os.environ.pop("RESEARCHGYM_RESULT_TOKEN", None)
    seed = int(seed_text) if seed_text else random.SystemRandom().randrange(2**63)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        score, leftovers = play(seed, args.games, args.rounds)
    except Exception as exc:  # report, do not crash silently
        print(json.dumps({"error": str(exc), "token": token}))
        sys.exit(1)
    print(json.dumps({"Score": score, "split": args.split, "leftover_processes_killed": leftovers, "token": token}))


if __name__ == "__main__":
    main()
