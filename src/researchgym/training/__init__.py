"""For training agents: reward options, vectorised environments, curricula, and runs exported
as datasets for supervised fine-tuning and RL."""

from researchgym.training.rewards import Rewarder, RewardEvent

__all__ = ["RewardEvent", "Rewarder"]
