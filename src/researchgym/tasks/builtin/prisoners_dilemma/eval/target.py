"""The column player in the iterated Prisoner's Dilemma (hidden from the agent).

Every round it picks one of eleven classic strategies uniformly at random, afresh, and plays
that strategy's move for the current history. "Row" is the agent.
"""


def _noisy(history, rng):
    if not history:
        return 1
    draw = rng.random()
    if draw < 0.3333:
        return 0
    if draw < 0.5:
        return 1
    if draw < 0.9:
        return history[-1][1]  # its own previous move
    return 1 - history[-1][0]  # the opposite of the row's previous move


def _tit_for_tat(history, rng):
    return history[-1][0] if history else 0


def _always_cooperate(history, rng):
    return 0


def _always_defect(history, rng):
    return 1


def _random(history, rng):
    return rng.randint(0, 1)


def _grim_trigger(history, rng):
    return 1 if any(row == 1 for row, _ in history) else 0


def _pavlov(history, rng):
    if not history:
        return 0
    row, col = history[-1]
    return 0 if row == col else 1


def _tit_for_two_tats(history, rng):
    if len(history) < 2:
        return 0
    return 1 if history[-1][0] == 1 and history[-2][0] == 1 else 0


def _suspicious_tit_for_tat(history, rng):
    return history[-1][0] if history else 1


def _forgiving_tit_for_tat(history, rng):
    if not history:
        return 0
    if len(history) >= 2 and history[-1][0] == 1 and history[-2][0] == 1:
        return 0
    return history[-1][0]


STRATEGIES = (
    _noisy, _tit_for_tat, _always_cooperate, _always_defect, _random, _grim_trigger, _pavlov,
    _tit_for_two_tats, _suspicious_tit_for_tat, _random, _forgiving_tit_for_tat,
)


def target_column_strategy(history, rng):
    """Return the column player's move (0 = cooperate, 1 = defect)."""
    return STRATEGIES[rng.randrange(len(STRATEGIES))](history, rng)
