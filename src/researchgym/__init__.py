"""researchgym: Gymnasium environments and a benchmark for agents doing ML research.

import researchgym, gymnasium
env = gymnasium.make("researchgym/BattleOfSexes-v0")   # or researchgym.make("battleOfSexes")
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import gymnasium

from researchgym.errors import ResearchGymError
from researchgym.tasks.registry import all_tasks, load_task
from researchgym.tasks.spec import TaskSpec

if TYPE_CHECKING:
    from researchgym.env import ResearchEnv
    from researchgym.wrappers import EpisodeWrapper

__version__ = "0.1.0"


def make(task_id: str, **kwargs: Any) -> ResearchEnv | EpisodeWrapper:
    """Create the environment of a task (by id, name, Gymnasium id or path) with its layers:
    `reward`, `footer` and `trajectory_dir` choose the wrappers (researchgym.wrappers.make_env),
    everything else goes to `ResearchEnv`."""
    from researchgym.wrappers import make_env

    return make_env(load_task(task_id), **kwargs)


def make_vec(task_ids: str | list[str], num_envs: int, **kwargs: Any) -> Any:
    """Several environments stepped together (gymnasium.vector; see researchgym.training.vector)."""
    from researchgym.training.vector import make_vec as build

    return build(task_ids, num_envs, **kwargs)


def register_builtin_envs() -> None:
    """Register every known task as `researchgym/<Name>-v<version>` with Gymnasium."""
    errors: list[ResearchGymError] = []
    for spec in all_tasks(errors=errors):
        if spec.gym_id not in gymnasium.registry:
            gymnasium.register(
                id=spec.gym_id,
                entry_point="researchgym.wrappers:make_env",
                kwargs={"task": spec.id},
                disable_env_checker=True,
            )
    for error in errors:
        warnings.warn(f"researchgym: skipped a broken task: {error}", stacklevel=2)


register_builtin_envs()

__all__ = ["make", "load_task", "TaskSpec", "register_builtin_envs", "__version__"]
