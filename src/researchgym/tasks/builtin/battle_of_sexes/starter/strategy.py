"""Your strategy for the row player in the repeated Battle of Sexes.

Edit `row_strategy` (keep its name and signature). It is called once per round with the
history of the current game and must return 0 or 1.
"""

import random


def row_strategy(history):
    """Return the row player's move (0 or 1) for the next round.

    history: list of (row_move, col_move) tuples for the earlier rounds of this game;
             empty in the first round.
    """
    if not history:
        return 0
    draw = random.random()
    if draw < 0.1:
        return 0
    if draw < 0.2:
        return 1
    if draw < 0.9:
        return history[-1][1]  # copy the column player's previous move
    return history[-1][0]  # repeat our own previous move
