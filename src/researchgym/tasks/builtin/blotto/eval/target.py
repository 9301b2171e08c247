"""The column player in repeated Colonel Blotto (hidden from the agent).

Each round, independently of the history: six uniform integers from 0 to 120, rescaled to
sum to 120 (rounding down), with the shortfall added to one battlefield chosen at random.

The uniform draws are made the way `rng.randint(0, 120)` and `rng.randrange(6)` make them
(random bits, drawn again while the value is out of range), which gives exactly their values
from the same generator at a third of the cost: the evaluator draws 600,000 of them.
"""

BATTLEFIELDS = 6
SOLDIERS = 120
_SOLDIER_BITS = (SOLDIERS + 1).bit_length()
_FIELD_BITS = BATTLEFIELDS.bit_length()


def target_column_strategy(history, rng):
    """Return the column player's allocation: 6 non-negative integers summing to 120."""
    bits = rng.getrandbits
    while True:
        draws = []
        while len(draws) < BATTLEFIELDS:
            value = bits(_SOLDIER_BITS)  # uniform in 0..SOLDIERS once out-of-range values are redrawn
            if value <= SOLDIERS:
                draws.append(value)
        total = sum(draws)
        if total:  # an all-zero draw cannot be rescaled; draw again
            break
    allocation = [value * SOLDIERS // total for value in draws]
    field = bits(_FIELD_BITS)
    while field >= BATTLEFIELDS:
        field = bits(_FIELD_BITS)
    allocation[field] += SOLDIERS - sum(allocation)
    return allocation
