"""Score a row strategy in repeated Colonel Blotto.

    python evaluate.py [--split validation|test] [--games 10000] [--rounds 10]

The game engine (`repeated_game.py`) runs `strategy.py: row_strategy` in its own process
against the hidden opponent and checks every allocation: exactly 6 integers, none negative,
summing to at most 120. A round pays +1 to the player who wins more battlefields, -1 to the
other, 0 on a tie; `Score` is the row player's mean payoff per round.
"""

from repeated_game import main

BATTLEFIELDS = 6
SOLDIERS = 120


def row_payoff(row: list[int], col: list[int]) -> float:
    won = sum(r > c for r, c in zip(row, col))
    lost = sum(r < c for r, c in zip(row, col))
    return float((won > lost) - (won < lost))


if __name__ == "__main__":
    main(payoff=row_payoff, moves={"kind": "allocation", "fields": BATTLEFIELDS, "total": SOLDIERS})
