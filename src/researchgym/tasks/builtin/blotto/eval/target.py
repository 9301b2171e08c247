"""The column player in repeated Colonel Blotto (hidden from the agent).

Each round, independently of the history: six uniform integers from 0 to 120, rescaled to
sum to 120 (rounding down), with the shortfall added to one battlefield chosen at random.
"""

BATTLEFIELDS = 6
SOLDIERS = 120


def target_column_strategy(history, rng):
    """Return the column player's allocation: 6 non-negative integers summing to 120."""
    while True:
        draws = [rng.randint(0, SOLDIERS) for _ in range(BATTLEFIELDS)]
        total = sum(draws)
        if total:  # an all-zero draw cannot be rescaled; draw again
            break
    allocation = [value * SOLDIERS // total for value in draws]
    allocation[rng.randrange(BATTLEFIELDS)] += SOLDIERS - sum(allocation)
    return allocation
