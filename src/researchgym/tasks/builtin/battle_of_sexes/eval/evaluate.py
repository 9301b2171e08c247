"""Score a row strategy in the repeated Battle of Sexes.

    python evaluate.py [--split validation|test] [--games 10000] [--rounds 10]

The game engine (`repeated_game.py`) plays `target.py: target_column_strategy` here, with its own
random generator, and asks `strategy.py: row_strategy` for your moves through
`strategy_server.py`, which runs in a separate sandbox (run by hand, as a subprocess). Every
move is checked here (0 or 1; a bool counts, a float does not). It reports `Score`: the row
player's mean payoff per round.
"""

from repeated_game import main

# PAYOFFS[row_move][col_move] = (row payoff, column payoff)
PAYOFFS = ((2, 1), (0, 0)), ((0, 0), (1, 2))


def row_payoff(row: int, col: int) -> float:
    return PAYOFFS[row][col][0]


if __name__ == "__main__":
    main(payoff=row_payoff, moves={"kind": "binary"})
