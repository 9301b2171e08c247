"""The scripted baseline: run the task's baseline command, validate, submit. No LLM, offline.

It is the reference every other agent is compared with, and the demo's agent.
"""

from __future__ import annotations

from typing import Any

from researchgym.tasks.spec import TaskSpec


class BaselineAgent:
    name = "baseline"

    def __init__(self) -> None:
        self._plan: list[str] = []

    def reset(self, task: TaskSpec, observation: str, info: dict[str, Any]) -> None:
        self._plan = [task.baseline.command] if task.baseline.command else []
        self._plan += ["validate", "submit"]

    def act(self, observation: str, info: dict[str, Any]) -> str:
        return self._plan.pop(0) if self._plan else "submit"
