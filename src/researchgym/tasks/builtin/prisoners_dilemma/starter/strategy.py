"""Your strategy for the row player in the iterated Prisoner's Dilemma.

Edit `row_strategy` (keep its name and signature). It is called once per round with the
history of the current game and must return 0 (cooperate) or 1 (defect).
"""

import random


def row_strategy(history):
    """Return the row player's move for the next round: 0 = cooperate, 1 = defect.

    history: list of (row_move, col_move) tuples for the earlier rounds of this game;
             empty in the first round.
    """
    if not history:
        return random.randint(0, 1)
    own_last, their_last = history[-1]
    draw = random.random()
    if their_last == 1:  # they defected last round
        if draw < 0.75:
            return 1
        if draw < 0.9:
            return own_last
        return 0
    if draw < 0.6:  # they cooperated last round
        return 0
    if draw < 0.9:
        return own_last
    return 1
