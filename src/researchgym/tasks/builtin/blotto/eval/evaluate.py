"""Score a row strategy in repeated Colonel Blotto.

    python evaluate.py [--split validation|test] [--games 10000] [--rounds 10]

The game engine (`repeated_game.py`) plays the hidden opponent here and asks
`strategy.py: row_strategy` for your allocations through `strategy_server.py`, which runs in a
separate sandbox (run by hand, as a subprocess). Every allocation is checked here: exactly 6
integers (not bools, not floats such as 20.0), none negative, summing to at most 120. A round
pays +1 to the player who wins more battlefields, -1 to the other, 0 on a tie; `Score` is the
row player's mean payoff per round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repeated_game import main

if TYPE_CHECKING:
    import numpy as np

BATTLEFIELDS = 6
SOLDIERS = 120


def row_payoff(row: list[int], col: list[int]) -> float:
    """The row player's payoff for one round."""
    won = sum(r > c for r, c in zip(row, col))
    lost = sum(r < c for r, c in zip(row, col))
    return float((won > lost) - (won < lost))


def row_payoffs(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """`row_payoff` for every game at once: rows and cols are (games, 6) integer arrays."""
    import numpy as np  # here, not above: the strategy's side is sent its setup before numpy loads

    won = (rows > cols).sum(axis=1)
    lost = (rows < cols).sum(axis=1)
    return np.sign(won - lost).astype(np.float32)


if __name__ == "__main__":
    main(payoff=row_payoff, batch_payoff=row_payoffs, round_opponent="target:target_column_moves",
         moves={"kind": "allocation", "fields": BATTLEFIELDS, "total": SOLDIERS})
