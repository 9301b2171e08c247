"""The engine shared by the repeated-game tasks (Battle of Sexes, Prisoner's Dilemma, Blotto).

This is the evaluator. It holds the opponent (target.py), the opponent's random generator,
the payoffs and every check of a move, and runs none of the agent's code: the agent's
`row_strategy` runs behind strategy_server.py, in a separate sandbox that holds the artefact and
nothing of the evaluator's, and the two exchange JSON frames over a link (agent_link.py):

- the opponent's generator is `random.Random(seed)`, the seed being the evaluation's (from the
  secrets file: for the test split a secret of the host's); the strategy's side gets a seed
  derived from it one-way (SHA-256), so it can neither recompute nor predict the opponent;
- every answer is untrusted data: its shape, types and ranges are checked here (a move is 0 or
  1; an allocation is exactly `fields` non-negative integers summing to at most `total`; bools
  are allowed as 0/1 for binary moves only; floats, even 20.0, never), and any fault of the
  strategy's (an invalid move, an exception, garbage, silence past a deadline, a crash) fails
  the evaluation with a message that says what was wrong;
- the result is reported on the evaluation's result channel, which the strategy cannot reach.

Games are played in lock-step (one message per round for all games), so 10,000 games cost
ten round trips, not a hundred thousand, and pipelined: this side's checks, payoffs and the
opponent's draws run while the strategy plays its next round. Run by hand (`python evaluate.py`
in the workspace), the strategy server is started as a subprocess and the result is printed.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from agent_link import MAX_DEPTH, AgentLink, LinkError, dumps, has_long_digits, report, report_error, strict_loads
from isolation import take_secrets

#: Seconds the strategy's side may take to start (import strategy.py).
SETUP_TIMEOUT_S = 30.0
#: Seconds the strategy may take to answer one round (one move in each of the games).
ROUND_TIMEOUT_S = 20.0
#: Seconds all rounds together may take (the evaluation as a whole has 120).
GAME_TIMEOUT_S = 80.0
SETUP_DOING = "start (import strategy.py)"
#: The longest error text shown (the end of a traceback is kept).
MAX_ERROR = 4000
#: The largest setup answer accepted, and the bytes allowed per game in a round's answer.
SETUP_LIMIT = 64 << 10
BYTES_PER_GAME = 1 << 10
#: No number in an answer has more digits (as agent_link.strict_loads: beyond any float).
LONGEST_NUMBER = 308
#: The bytes of a frame that holds nothing but lists of non-negative integers.
_PLAIN_BYTES = b"0123456789,[]"

Opponent = Callable[[list, random.Random], Any]
#: An opponent that moves in every game of a round at once, exactly as `Opponent` called game
#: after game would (same moves, generator left in the same state): a (games, fields) array.
RoundOpponent = Callable[[list, random.Random], "np.ndarray"]
Payoff = Callable[[Any, Any], float]
BatchPayoff = Callable[["np.ndarray", "np.ndarray"], "np.ndarray"]


class StrategyError(Exception):
    """The submission cannot be scored; the message says why (shown to the agent)."""


# ------------------------------------------------------------------------ the strategy's seed
def strategy_seed(seed: int) -> int:
    """The seed of the strategy's `random` (and numpy): one-way from the evaluation's seed."""
    return int.from_bytes(hashlib.sha256(f"row:{seed}".encode()).digest()[:8], "little")


# ------------------------------------------------------------------------ checking answers
def _described(value: Any) -> bool:
    """The server's stand-in for a value JSON cannot carry: {"type": ..., "repr": ...}."""
    return isinstance(value, dict) and set(value) == {"type", "repr"} and all(isinstance(v, str) for v in value.values())


def _item(value: Any) -> str:
    if _described(value):
        return value["repr"][:60]
    if isinstance(value, list):
        return "[" + ", ".join(_item(v) for v in value[:16]) + (", ...]" if len(value) > 16 else "]")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def show(value: Any) -> str:
    """A received move for a message: its text and its type, as row_strategy returned it."""
    kind = value["type"][:40] if _described(value) else type(value).__name__
    text = _item(value)
    return text[:200] + ("..." if len(text) > 200 else "") + f" ({kind})"


def _is_int(value: Any) -> bool:
    return type(value) is int  # not bool, not float (JSON gives nothing else that is numeric)


def check_binary(moves: list[Any], where: Callable[[int], str]) -> list[int]:
    """0 or 1 (a bool counts as 0 or 1, as operator.index would take it; 1.0 does not)."""
    kinds = set(map(type, moves))
    if kinds <= {int, bool} and set(moves) <= {0, 1}:  # the fast path: every move valid
        return [int(move) for move in moves] if bool in kinds else moves
    for game, move in enumerate(moves):
        if type(move) not in (int, bool) or move not in (0, 1):
            raise StrategyError(f"{where(game)}: row_strategy returned {show(move)}; it must return 0 or 1")
    raise AssertionError("unreachable")


def check_allocations(moves: list[Any], fields: int, total: int, where: Callable[[int], str],
                      plain: bool = False) -> tuple[list[list[int]], np.ndarray]:
    """Exactly `fields` integers (no bool, no float, not nested), each >= 0, summing to at most
    `total`; the moves, and the same as a (games, fields) array. `plain`: the answer's JSON held
    nothing but digits, commas and brackets (so no bool, float, string or sign), which leaves
    only the shape and the sums to check."""
    import numpy as np

    if plain:  # the fastest path: numpy checks the shape (ragged or nested lists raise)
        try:
            array = np.array(moves, dtype=np.int64)
        except (ValueError, OverflowError, TypeError):
            array = None
        if array is not None and array.shape == (len(moves), fields) and (
                not array.size or (int(array.min()) >= 0 and int(array.sum(axis=1).max()) <= total)):
            return moves, array
    if all(type(move) is list and len(move) == fields for move in moves):  # the fast path
        flat = [value for move in moves for value in move]
        if set(map(type, flat)) <= {int} and (not flat or (min(flat) >= 0 and max(flat) <= total)):
            array = np.asarray(flat, dtype=np.int64).reshape(len(moves), fields)
            if not len(array) or int(array.sum(axis=1).max()) <= total:
                return moves, array
    for game, move in enumerate(moves):
        message = f"{where(game)}: row_strategy returned {show(move)}; "
        if type(move) is not list or len(move) != fields:
            raise StrategyError(message + f"it must return a list of exactly {fields} integers")
        for value in move:
            if not _is_int(value):
                raise StrategyError(message + f"every entry must be an integer from 0 to {total} (not {show(value)})")
        if min(move) < 0 or sum(move) > total:
            raise StrategyError(message + f"entries must be >= 0 and sum to at most {total}")
    raise AssertionError("unreachable")


def parse_answer(frame: bytes) -> Any:
    """A round's answer, parsed as strictly as agent_link.strict_loads does. A frame without
    strings (every valid answer) has its nesting measured on its brackets alone, at C speed: the
    same bound, without a Python loop over a quarter of a megabyte per round."""
    if b'"' in frame or not frame:
        return strict_loads(frame)
    if has_long_digits(frame):
        raise ValueError(f"a number of more than {LONGEST_NUMBER} digits")
    if not well_nested(frame, MAX_DEPTH) and _depth(frame) > MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return json.loads(frame, parse_constant=_reject_constant, parse_float=_finite_float)


_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def well_nested(frame: bytes, max_depth: int) -> bool:
    """Whether the brackets of a frame without strings pair up, at most `max_depth` deep, at C
    speed: everything but the brackets is deleted, then each pass removes the innermost pairs (a
    round of moves is two levels deep: two passes). False also for brackets that do not pair."""
    brackets = frame.translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not brackets:
            return True
        brackets = brackets.replace(b"[]", b"").replace(b"{}", b"")
    return not brackets


def _depth(frame: bytes) -> int:
    """How deep [ and { nest, counted the slow way (for a frame that is not well nested)."""
    import numpy as np

    data = np.frombuffer(frame, dtype=np.uint8)
    steps = ((data == ord("[")) | (data == ord("{"))).astype(np.int32)
    steps -= ((data == ord("]")) | (data == ord("}"))).astype(np.int32)
    return int(np.cumsum(steps).max())


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


# ------------------------------------------------------------------------ playing
class Game:
    """One evaluation: the opponent and its generator here, the strategy behind the link."""

    def __init__(self, link: AgentLink, opponent: Opponent, payoff: Payoff, moves: dict[str, Any], seed: int,
                 games: int, rounds: int, batch_payoff: BatchPayoff | None = None, *,
                 round_opponent: RoundOpponent | None = None,
                 setup_timeout_s: float = SETUP_TIMEOUT_S, round_timeout_s: float = ROUND_TIMEOUT_S,
                 game_timeout_s: float = GAME_TIMEOUT_S) -> None:
        self.link, self.opponent, self.round_opponent, self.moves = link, opponent, round_opponent, moves
        self.seed, self.games, self.rounds = seed, games, rounds
        self.setup_timeout_s, self.round_timeout_s, self.game_timeout_s = setup_timeout_s, round_timeout_s, game_timeout_s
        self.binary = moves["kind"] == "binary"
        if batch_payoff is None and not self.binary:
            raise ValueError("allocation games need a batch payoff")
        self.payoff, self.batch_payoff = payoff, batch_payoff
        self._setup_deadline = 0.0

    def _pay(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if self.batch_payoff is None:  # a game of 0 and 1: the payoff table, looked up
            import numpy as np

            table = np.array([[self.payoff(row, col) for col in (0, 1)] for row in (0, 1)], dtype=np.float32)
            self.batch_payoff = lambda rows, cols: table[rows, cols]  # noqa: E731
        return self.batch_payoff(rows, cols)

    def _failure(self, exc: LinkError, deadline: float, timeout_s: float, doing: str) -> StrategyError:
        if time.monotonic() >= deadline:
            return StrategyError(f"the strategy did not {doing} within {timeout_s:g}s")
        return StrategyError(f"the strategy failed to {doing}: {exc}")

    def _send(self, request: Any, deadline: float, timeout_s: float, doing: str) -> None:
        """Send a request (JSON bytes as they are, anything else encoded)."""
        try:
            payload = request if isinstance(request, bytes) else dumps(request)
            self.link.send(payload, max(deadline - time.monotonic(), 0.001))
        except LinkError as exc:
            raise self._failure(exc, deadline, timeout_s, doing) from None

    def _receive(self, deadline: float, timeout_s: float, limit: int, doing: str) -> bytes:
        try:
            return self.link.receive(max(deadline - time.monotonic(), 0.001), limit, doing)
        except LinkError as exc:
            raise self._failure(exc, deadline, timeout_s, doing) from None

    @staticmethod
    def _parse(frame: bytes, doing: str) -> Any:
        """An answer as data; the strategy's own error frame (or garbage) becomes a StrategyError."""
        try:
            answer = parse_answer(frame)
        except (ValueError, RecursionError) as exc:
            raise StrategyError(f"the strategy's side sent an answer that is not valid JSON here when asked to "
                                f"{doing}: {exc}") from None
        if isinstance(answer, dict) and "error" in answer:
            error = answer["error"] if isinstance(answer["error"], str) else repr(answer["error"])
            raise StrategyError(error if len(error) <= MAX_ERROR else "...\n" + error[-MAX_ERROR:])
        return answer

    def check(self, answer: Any, round_index: int, plain: bool = False) -> tuple[list[Any], np.ndarray]:
        """The round's moves, checked, and as an array."""
        import numpy as np

        if type(answer) is not list or len(answer) != self.games:
            size = f"a list of {len(answer)} moves" if type(answer) is list else show(answer)
            raise StrategyError(f"round {round_index + 1}: the strategy's side answered {size}; "
                                f"expected a list of {self.games} moves, one per game")

        def where(game: int) -> str:
            return f"round {round_index + 1}, game {game + 1}"

        if self.binary:
            rows = check_binary(answer, where)
            return rows, np.asarray(rows)
        return check_allocations(answer, self.moves["fields"], self.moves["total"], where, plain)

    def start(self) -> None:
        """Send the strategy's side its setup: it can import strategy.py and play the first round
        while this side is still importing numpy."""
        self._setup_deadline = time.monotonic() + self.setup_timeout_s
        self._send({"seed": strategy_seed(self.seed), "games": self.games, "moves": self.moves},
                   self._setup_deadline, self.setup_timeout_s, SETUP_DOING)

    def play(self) -> float:
        """Play every game (after start()); the row player's mean payoff per round (float32
        arithmetic)."""
        gc.disable()  # the histories are a million objects and hold no cycles: never rescan them
        try:
            return self._play()
        finally:
            gc.enable()

    def _doing(self, round_index: int) -> str:
        return f"answer round {round_index + 1} ({self.games:,} moves)"

    def _play(self) -> float:
        """The rounds, pipelined so that the strategy never waits on this side's bookkeeping:
        the moment round r's answer has arrived (the strategy is committed to it) the column
        player's round-r moves go out, the strategy starts on round r+1, and meanwhile this side
        checks and scores round r and draws the column player's round r+1 moves (which depend on
        the rounds before only: the moves are simultaneous)."""
        import numpy as np

        opponent_rng = random.Random(self.seed)
        if not self._setup_deadline:
            self.start()
        ready = self._parse(self._receive(self._setup_deadline, self.setup_timeout_s, SETUP_LIMIT, SETUP_DOING),
                            SETUP_DOING)
        if ready != {"ready": True}:
            raise StrategyError(f"the strategy's side answered {show(ready)} when started; expected it to be ready")
        histories: list[list[tuple[Any, Any]]] = [[] for _ in range(self.games)]
        payoffs = np.zeros((self.games, self.rounds), dtype=np.float32)
        limit = SETUP_LIMIT + self.games * BYTES_PER_GAME
        game_deadline = time.monotonic() + self.game_timeout_s
        unscored: tuple[int, bytes, list[Any], np.ndarray] | None = None  # answered, not yet checked
        request = b"[]"  # the column player's moves of the round before, as sent ([] before the first)
        for round_index in range(self.rounds):
            left = game_deadline - time.monotonic()
            if left <= 0:
                raise StrategyError(f"the strategy used up the {self.game_timeout_s:g}s all rounds may take "
                                    f"before round {round_index + 1}")
            timeout = min(self.round_timeout_s, left)
            deadline = time.monotonic() + timeout
            try:
                self._send(request, deadline, timeout, self._doing(round_index))
            except StrategyError:
                if unscored is not None:  # the strategy's side may have stopped on an error it sent
                    self._score(*unscored, histories, payoffs)
                raise
            if unscored is not None:
                self._score(*unscored, histories, payoffs)
            if self.round_opponent is not None:
                column_array = np.asarray(self.round_opponent(histories, opponent_rng))
                columns = column_array.tolist()
            else:
                columns = [self.opponent(list(history), opponent_rng) for history in histories]
                column_array = np.asarray(columns)
            if round_index + 1 < self.rounds:  # the next request, encoded while the strategy thinks
                request = dumps(columns)
            frame = self._receive(deadline, timeout, limit, self._doing(round_index))
            if not frame.lstrip().startswith(b"["):  # not a list of moves: an error, said now
                self._score(round_index, frame, columns, column_array, histories, payoffs)
            unscored = (round_index, frame, columns, column_array)
        assert unscored is not None
        self._score(*unscored, histories, payoffs)
        game_scores = payoffs.mean(axis=1, dtype=np.float32)
        return float(game_scores.mean(dtype=np.float32))

    def _score(self, round_index: int, frame: bytes, columns: list[Any], column_array: np.ndarray,
               histories: list[list[tuple[Any, Any]]], payoffs: np.ndarray) -> None:
        """Check one round's answer, add the round to every game's history and pay it."""
        answer = self._parse(frame, self._doing(round_index))
        rows, row_array = self.check(answer, round_index, plain=not frame.translate(None, _PLAIN_BYTES))
        for history, row, col in zip(histories, rows, columns):
            history.append((row, col))
        payoffs[:, round_index] = self._pay(row_array, column_array)


def load_opponent(folder: str, module: str, function: str) -> Opponent:
    sys.path.insert(0, folder)
    try:
        return getattr(__import__(module), function)
    finally:
        sys.path.remove(folder)


def main(*, payoff: Payoff, moves: dict[str, Any], opponent: str = "target:target_column_strategy",
         batch_payoff: BatchPayoff | None = None, round_opponent: str | None = None) -> None:
    """Command line of every game task's evaluate.py; reports {"Score": ..., "split": ...}.
    `round_opponent` names the opponent's every-game-at-once form, where it has one."""
    _token, seed = take_secrets()  # the token serves `result: stdout` tasks; this one reports on the channel
    parser = argparse.ArgumentParser(description="Score strategy.py:row_strategy against the opponent.")
    parser.add_argument("--split", default=os.environ.get("RESEARCHGYM_SPLIT", "validation"))
    parser.add_argument("--games", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--setup-timeout", type=float, default=SETUP_TIMEOUT_S, help="seconds to import strategy.py")
    parser.add_argument("--round-timeout", type=float, default=ROUND_TIMEOUT_S, help="seconds per round")
    parser.add_argument("--game-timeout", type=float, default=GAME_TIMEOUT_S, help="seconds for all rounds")
    args = parser.parse_args()
    if seed is None:  # run by hand: a fresh seed every time
        seed = random.SystemRandom().randrange(2**63)
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    module, _, function = opponent.partition(":")
    try:
        opponent_fn = load_opponent(here, module, function)
        round_fn = load_opponent(here, *round_opponent.split(":", 1)) if round_opponent else None
    except ImportError:
        report_error(f"the opponent ({module}.py) is not in {here}: it is hidden from the workspace; "
                     "run `validate` to score your strategy", "evaluation_error")
        sys.exit(1)
    link = AgentLink.open([sys.executable, os.path.join(here, "strategy_server.py")])
    try:
        game = Game(link, opponent_fn, payoff, moves, seed, args.games, args.rounds, batch_payoff,
                    round_opponent=round_fn, setup_timeout_s=args.setup_timeout,
                    round_timeout_s=args.round_timeout, game_timeout_s=args.game_timeout)
        game.start()  # before anything imports numpy here
        score = game.play()
    except StrategyError as exc:
        report_error(str(exc), "evaluation_format_error")
        sys.exit(1)
    finally:
        link.close()
    report({"Score": score, "split": args.split})
