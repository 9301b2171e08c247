"""How an episode is rewarded, chosen per run and recorded in the trajectory.

* `final` (default): 0 on every step, and the normalised final score (gain over the baseline,
  divided by |baseline|; -1 when nothing could be scored, and never less than -1 when something
  was: see `final_reward`) on the last. Honest and sparse: the
  agent learns only from outcomes, and a long episode gives one number.
* `dense`: potential-based shaping on validations. The potential is the best normalised
  validation score so far (0 = the baseline); each `validate` that raises it pays the rise, and
  the last step pays the final score minus the potential reached. An episode's return is the
  same as under `final`, so the optimum does not move; the signal just arrives earlier. It
  rewards validating often, and an agent can learn to overfit the validation split (the final,
  hidden-test term takes back what does not transfer).
* a callable `fn(event: RewardEvent) -> float`, called on every step: anything else (a cost
  penalty per step, a bonus for submitting early). Recorded by its qualified name.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FAILED_REWARD = -1.0


@dataclass(frozen=True)
class RewardEvent:
    """What a reward function sees after a step."""

    kind: str  # "step", "validate" (a validation was scored or failed), or "end"
    step: int
    #: The normalised validation score of this step's validation, if it scored.
    validation: float | None
    #: The normalised final score, on the last step only.
    final: float | None
    #: The best normalised validation score before this step (0: the baseline).
    best_before: float
    task: Any


RewardFn = Callable[[RewardEvent], float]


def normalise(task: Any, score: float | None) -> float | None:
    """Gain over the task's baseline relative to |baseline| (sign-corrected for minimised metrics)."""
    if score is None:
        return None
    baseline = task.baseline_score
    if baseline is None:
        return float(score) if task.metric.direction == "maximize" else -float(score)
    scale = abs(baseline) or 1.0
    gain = score - baseline if task.metric.direction == "maximize" else baseline - score
    return float(gain / scale)


def final_reward(value: float | None) -> float:
    """The last step's reward for a normalised final score: FAILED_REWARD when nothing was scored,
    and never less than that when something was. Otherwise a scored submission far below the
    baseline (Mountain Car's negative returns against its baseline of 1.43 gave -57) would pay
    less than deleting it and failing on purpose, which the red team showed."""
    return FAILED_REWARD if value is None else max(value, FAILED_REWARD)


class Rewarder:
    """Turns an episode's events into rewards under one mode; one per episode."""

    def __init__(self, mode: str | RewardFn = "final") -> None:
        if callable(mode):
            self.fn: RewardFn | None = mode
            self.name = f"custom:{getattr(mode, '__qualname__', type(mode).__name__)}"
        elif mode in ("final", "dense"):
            self.fn, self.name = None, mode
        else:
            raise ValueError(f"reward must be 'final', 'dense' or a callable, not {mode!r}")
        self.best = 0.0

    def reset(self) -> None:
        self.best = 0.0

    def __call__(self, event: RewardEvent) -> float:
        if self.fn is not None:
            reward = float(self.fn(event))
            if not math.isfinite(reward):  # it would poison every return and average it enters
                raise ValueError(
                    f"the reward function {self.name.removeprefix('custom:')} returned {reward} for a "
                    f"{event.kind} event at step {event.step}; a reward must be a finite number"
                )
        elif event.kind == "end":
            final = final_reward(event.final)
            reward = final - (self.best if self.name == "dense" else 0.0)
            if not math.isfinite(reward):  # two finite scores near a float's limit, far apart
                reward = math.copysign(sys.float_info.max, reward)
        elif self.name == "dense" and event.kind == "validate" and event.validation is not None:
            reward = max(event.validation - self.best, 0.0)
        else:
            reward = 0.0
        if event.kind == "validate" and event.validation is not None:
            self.best = max(self.best, event.validation)
        return reward
