"""The agent's side of a repeated game: serves `strategy.py: row_strategy`, nothing else.

In an evaluation this runs in a sandbox of its own that holds the artefact (`strategy.py`) and
this task's public files (this server, agent_link.py), and nothing else: no opponent, no
evaluator seed, no result channel. The evaluator (repeated_game.py, in another sandbox) plays
the opponent, checks every move and keeps the score; this server only answers with the moves
`row_strategy` returns. Run by hand, evaluate.py starts it as a subprocess in the workspace.

Protocol: JSON frames over stdin/stdout (see agent_link.py).
  evaluator -> here: first {"seed": S, "games": G, "moves": RULE}; then, once per round, the
  column player's moves of the previous round in every game ([] before the first round).
  here -> evaluator: {"ready": true} once strategy.py is imported; then, each round, a list of
  G moves (the value row_strategy returned for each game, encoded below); or {"error": TEXT}
  (a traceback), after which this process exits.

`random` is seeded with S (and numpy's global generator with S mod 2**32, when the strategy
first imports numpy.random). S is derived
one-way (SHA-256) from the evaluator's seed, so knowing it reveals nothing about the opponent's
generator.

Moves are sent as JSON and checked by the evaluator, not here: what JSON can hold is sent as
it is (a tuple as a list), a numpy number as that number, an object with __index__ as the
integer, and anything else (an array, NaN, an integer of more than 308 digits, an object, ...)
as {"type": NAME, "repr": TEXT}, which the evaluator always rejects, naming it (an item of a
list or tuple is described alone). The histories show each move as the evaluator
received it (a bool as 0 or 1 in the games of 0 and 1).
"""

from __future__ import annotations

import gc
import importlib.abc
import importlib.machinery
import json
import operator
import os
import random
import sys
import traceback
from typing import Any

from agent_link import AgentEnd, has_long_digits

#: The longest error text sent (characters: the end of the traceback is kept).
MAX_MESSAGE = 4000
#: Numbers of more digits than this are not sent (the evaluator reads none so long).
LONGEST_NUMBER = 308


def describe(value: Any) -> dict[str, str]:
    """A stand-in for a value JSON cannot hold (the evaluator shows it in its message)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**LONGEST_NUMBER:
        digits = len(str(abs(value))) if value.bit_length() < 14_000 else "over 4,000"  # str() stops at 4,300
        return {"type": type(value).__name__, "repr": f"an integer of {digits} digits"}
    try:
        text = repr(value)
    except BaseException:  # noqa: BLE001 - a broken __repr__ is described, not raised
        text = "<unprintable>"
    if len(text) > 60:
        text = text[:57] + "..."
    return {"type": type(value).__name__, "repr": text}


def plain(value: Any) -> Any:
    """json.dumps's fallback for what JSON cannot hold."""
    kind = type(value)
    if kind.__module__ == "numpy" and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()  # a numpy scalar (or 0-d array) as the Python int, float or bool
    if hasattr(kind, "__index__"):
        try:
            return operator.index(value)
        except TypeError:
            pass
    return describe(value)


def dumps(value: Any) -> bytes:
    """JSON for `value`; ValueError if it holds NaN, an infinity or a number too long to read."""
    text = json.dumps(value, allow_nan=False, separators=(",", ":"), default=plain).encode()
    if has_long_digits(text):
        raise ValueError("a number too long for the evaluator")
    return text


def encode_move(move: Any) -> bytes:
    """One move, an unsendable one described (in a list or tuple, item by item)."""
    try:
        return dumps(move)
    except Exception:  # noqa: BLE001 - NaN, a huge integer, a circular list, a broken __index__ ...
        pass
    if isinstance(move, (list, tuple)) and len(move) <= 64:
        parts = []
        for item in move:
            try:
                parts.append(dumps(item))
            except Exception:  # noqa: BLE001
                parts.append(dumps(describe(item)))
        return b"[" + b",".join(parts) + b"]"
    return dumps(describe(move))


def encode_round(moves: list[Any]) -> bytes:
    """The moves of one round as a JSON list: at C speed when every move is plain, else move
    by move."""
    try:
        return dumps(moves)
    except Exception:  # noqa: BLE001
        return b"[" + b",".join(encode_move(move) for move in moves) + b"]"


def failure(headline: str) -> dict[str, str]:
    """The error frame for the exception being handled: its traceback from the agent's code on
    (this server's own frames left out), the end kept if it is long."""
    kind, error, tb = sys.exc_info()
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    text = headline + "\n" + "".join(traceback.format_exception(kind, error, tb))
    return {"error": text if len(text) <= MAX_MESSAGE else "...\n" + text[-MAX_MESSAGE:]}


class SeedNumpyOnImport(importlib.abc.MetaPathFinder):
    """Seeds numpy's global generator the moment `numpy.random` is first imported, by whatever
    imports it: a strategy that uses it gets reproducible draws, and one that does not never
    pays for importing numpy (a tenth of a second of every evaluation)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "numpy.random":
            return None
        sys.meta_path.remove(self)  # once, and the real finders do the finding
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load, seed = spec.loader.exec_module, self.seed

        def load_and_seed(module: Any) -> None:
            load(module)
            module.seed(seed)

        spec.loader.exec_module = load_and_seed  # type: ignore[method-assign]
        return spec


def main() -> None:
    end = AgentEnd.from_stdio()  # from here on, prints of the agent's code go to stderr

    setup = end.receive_json()
    if setup is None:
        return
    seed, games = int(setup["seed"]), int(setup["games"])
    binary = setup["moves"]["kind"] == "binary"
    random.seed(seed)
    sys.meta_path.insert(0, SeedNumpyOnImport(seed % 2**32))
    try:
        sys.path.insert(0, os.getcwd())
        from strategy import row_strategy  # the agent's code
    except BaseException:  # noqa: BLE001 - every failure is reported to the evaluator
        end.send_json(failure("could not import row_strategy from strategy.py:"))
        return
    end.send_json({"ready": True})

    histories: list[list[tuple[Any, Any]]] = [[] for _ in range(games)]
    while True:
        columns = end.receive_json()
        if columns is None:  # the evaluator is done
            return
        if columns:
            for history, column in zip(histories, columns):
                history[-1] = (history[-1][0], column)
        try:
            frame = encode_round([row_strategy(list(history)) for history in histories])
        except BaseException:  # noqa: BLE001
            end.send_json(failure("row_strategy raised an exception:"))
            return
        end.send(frame)
        sent = json.loads(frame)
        if binary and any(type(move) is bool for move in sent):
            sent = [int(move) if type(move) is bool else move for move in sent]
        for history, move in zip(histories, sent):
            history.append((move, None))
        gc.freeze()  # what the histories hold stays: later collections need not rescan it


if __name__ == "__main__":
    main()
