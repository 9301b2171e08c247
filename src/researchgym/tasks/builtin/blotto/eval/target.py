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


# ------------------------------------------------------------------------ a round at once
# The evaluator asks for every game's move of a round together. `target_column_moves` returns
# exactly what `target_column_strategy` called game after game would (the same allocations from
# the same generator, left in the same state), from one block of the generator's 32-bit words
# read with numpy: `getrandbits(k)` for k <= 32 is one word's top k bits, and a block of n words
# comes out as one integer, first word lowest.
_WORD = 32


def target_column_moves(histories, rng):
    """Every game's allocation for this round, as a (games, 6) integer array."""
    import numpy as np

    games = len(histories)
    state = rng.getstate()
    words_per_game = 8  # 7.68 on average: 6 soldier draws at 121/128, a field draw at 6/8
    size = games * words_per_game + 64
    while True:
        block = rng.getrandbits(_WORD * size).to_bytes(4 * size, "little")
        read = _read_round(np.frombuffer(block, dtype="<u4"), games, np)
        rng.setstate(state)
        if read is not None:
            break
        if size > 64 * (games + 1) * words_per_game:  # an all-zero draw: the rare case, game by game
            return np.array([target_column_strategy(history, rng) for history in histories], dtype=np.int64)
        size *= 2
    allocations, used = read
    rng.getrandbits(_WORD * used)  # leave the generator where game-by-game calls leave it
    return allocations


def _read_round(words, games, np):
    """(allocations, words used), or None if the block is too short or a draw is all zeros."""
    soldiers = words >> (_WORD - _SOLDIER_BITS)
    fields = words >> (_WORD - _FIELD_BITS)
    soldier_ok = soldiers <= SOLDIERS
    field_ok = fields < BATTLEFIELDS
    soldier_at = np.flatnonzero(soldier_ok)  # the words kept as soldier draws, in order
    field_at = np.flatnonzero(field_ok)
    soldiers_before = np.cumsum(soldier_ok) - soldier_ok  # kept soldier draws before each word
    fields_through = np.cumsum(field_ok)  # kept field draws up to and including each word
    # A game starting at word s takes the next 6 kept soldier draws, then the first kept field
    # draw after them; the next game starts after that. Where each start leads, for every word:
    first = soldiers_before
    complete = first + BATTLEFIELDS <= len(soldier_at)
    last_soldier = soldier_at[np.minimum(first + BATTLEFIELDS - 1, max(len(soldier_at) - 1, 0))] if len(soldier_at) else first
    field_index = fields_through[last_soldier] if len(words) else first
    complete &= field_index < len(field_at)
    field_word = field_at[np.minimum(field_index, max(len(field_at) - 1, 0))] if len(field_at) else first
    following = np.where(complete, field_word + 1, -1).tolist()
    starts = []
    start = 0
    for _ in range(games):
        if start >= len(following) or following[start] < 0:
            return None
        starts.append(start)
        start = following[start]
    if not games:
        return np.zeros((0, BATTLEFIELDS), dtype=np.int64), 0
    starts = np.asarray(starts)
    draws = soldiers[soldier_at[first[starts][:, None] + np.arange(BATTLEFIELDS)]].astype(np.int64)
    totals = draws.sum(axis=1)
    if not totals.all():
        return None
    allocation = draws * SOLDIERS // totals[:, None]
    chosen = fields[field_word[starts]].astype(np.int64)
    allocation[np.arange(games), chosen] += SOLDIERS - allocation.sum(axis=1)
    return allocation, start
