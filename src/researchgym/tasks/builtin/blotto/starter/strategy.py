"""Your strategy for the row player in repeated Colonel Blotto.

Edit `row_strategy` (keep its name and signature). It is called once per round with the
history of the current game and must return an allocation: a list of 6 non-negative integers
(soldiers per battlefield) that sum to at most 120.
"""

import random

BATTLEFIELDS = 6
SOLDIERS = 120


def row_strategy(history):
    """Return the row player's allocation for the next round.

    history: list of (your_allocation, their_allocation) pairs for the earlier rounds of this
             game; empty in the first round.
    """
    allocation = [0] * BATTLEFIELDS
    for _ in range(random.randint(1, BATTLEFIELDS)):
        allocation[random.randrange(BATTLEFIELDS)] += random.randint(10, 30)
    remaining = SOLDIERS - sum(allocation)
    if remaining > 0:
        for field in range(BATTLEFIELDS):
            if allocation[field] == 0:
                extra = random.randint(0, remaining)
                allocation[field] += extra
                remaining -= extra
    total = sum(allocation)
    allocation = [value * SOLDIERS // total for value in allocation]
    allocation[random.randrange(BATTLEFIELDS)] += SOLDIERS - sum(allocation)
    return allocation
