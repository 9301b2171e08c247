"""The agent seam: something that turns an observation into the next shell command."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from researchgym.tasks.spec import TaskSpec


@runtime_checkable
class Agent(Protocol):
    name: str

    def reset(self, task: TaskSpec, observation: str, info: dict[str, Any]) -> None:
        """Start a new episode of `task`; `observation` is the task prompt."""

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """Return the next action: one shell command."""
