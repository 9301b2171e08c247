"""Score a row strategy in the repeated Battle of Sexes.

    python evaluate.py [--split validation|test] [--games 10000] [--rounds 10]

The game engine (`repeated_game.py`) runs `strategy.py: row_strategy` in its own process
against `target.py: target_column_strategy`, each with its own random generator, and prints a
JSON line with `Score`: the row player's mean payoff per round.
"""

from repeated_game import main

# PAYOFFS[row_move][col_move] = (row payoff, column payoff)
PAYOFFS = ((2, 1), (0, 0)), ((0, 0), (1, 2))


def row_payoff(row: int, col: int) -> float:
    return PAYOFFS[row][col][0]


if __name__ == "__main__":
    main(payoff=row_payoff, moves={"kind": "binary"})
