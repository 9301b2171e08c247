"""Many research environments stepped in lock-step, as a `gymnasium.vector` environment.

    envs = researchgym.make_vec(["battleOfSexes", "blotto"], num_envs=4, reward="dense")
    observations, infos = envs.reset(seed=0)          # a tuple of prompts
    observations, rewards, terminations, truncations, infos = envs.step(actions)

Each sub-environment lives in its own process (AsyncVectorEnv, started with `spawn`) with its
own sandbox; `close()` closes every one. Tasks are assigned round-robin: sub-environment i plays
`task_ids[i % len(task_ids)]`. Observations and actions are strings, so there is no shared
memory: they travel through pipes.

Autoreset follows Gymnasium's default (next-step): when a sub-environment's episode ends, the
step that ended it returns the final observation and reward, and the *next* `step()` call
resets that sub-environment, ignores its action and returns the new task prompt with reward 0
(and `terminated = truncated = False`). Keep playing the returned observations and this works
out; a training loop must not count that reset step's reward or action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv


def _factory(task_id: str, kwargs: dict[str, Any]) -> Callable[[], gymnasium.Env]:
    def make() -> gymnasium.Env:
        from researchgym.wrappers import make_env

        return make_env(task_id, **kwargs)

    return make


def make_vec(
    task_ids: str | list[str], num_envs: int, *, vectorization_mode: str = "async", **env_kwargs: Any
) -> gymnasium.vector.VectorEnv:
    """A vector of `num_envs` research environments over `task_ids` (round-robin). Keyword
    arguments go to every environment's `make_env` (sandbox, limits, reward, research_tools, ...)."""
    tasks = [task_ids] if isinstance(task_ids, str) else list(task_ids)
    if not tasks:
        raise ValueError("make_vec needs at least one task id")
    if num_envs < 1:
        raise ValueError(f"num_envs must be at least 1, not {num_envs}")
    from researchgym.tasks.registry import load_task

    for task in set(tasks):  # fail here, with the task's name, not in a worker process
        load_task(task)
    fns = [_factory(tasks[i % len(tasks)], dict(env_kwargs)) for i in range(num_envs)]
    if vectorization_mode == "sync":
        return SyncVectorEnv(fns, autoreset_mode=AutoresetMode.NEXT_STEP)
    if vectorization_mode != "async":
        raise ValueError(f"vectorization_mode must be 'async' or 'sync', not {vectorization_mode!r}")
    return AsyncVectorEnv(fns, shared_memory=False, context="spawn", autoreset_mode=AutoresetMode.NEXT_STEP)
