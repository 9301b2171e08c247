"""Score a row strategy in the iterated Prisoner's Dilemma.

    python evaluate.py [--split validation|test] [--games 10000] [--rounds 10]

The game engine (`repeated_game.py`) runs `strategy.py: row_strategy` in its own process
against the hidden opponent, each with its own random generator, and prints a JSON line with
`Score`: the row player's mean payoff per round.
"""

from repeated_game import main

# PAYOFFS[row_move][col_move] = (row payoff, column payoff); 0 = cooperate, 1 = defect
PAYOFFS = ((3, 3), (0, 5)), ((5, 0), (1, 1))


def row_payoff(row: int, col: int) -> float:
    return PAYOFFS[row][col][0]


if __name__ == "__main__":
    main(payoff=row_payoff, moves={"kind": "binary"})
