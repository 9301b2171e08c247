"""The column player (opponent) in the repeated Battle of Sexes.

It opens with 1. From round 2 on it looks only at the row player's first move and repeats it
with probability 0.8 (plays the other move with probability 0.2), drawing independently each
round from its own random generator, which the row player cannot reach.
"""


def target_column_strategy(history, rng):
    """Return the column player's move (0 or 1).

    history: list of (row_move, col_move) tuples for the earlier rounds of this game.
    rng: a `random.Random` owned by the evaluator.
    """
    if not history:
        return 1
    first_row_move = history[0][0]
    keep = rng.random() < 0.8
    return first_row_move if keep else 1 - first_row_move
