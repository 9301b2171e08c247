"""An agent that plays a fixed list of actions: for tests, demos and reproducing a run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from researchgym.tasks.spec import TaskSpec


class ScriptedAgent:
    name = "scripted"

    def __init__(self, actions: Iterable[str] = (), *, then_submit: bool = True) -> None:
        self.actions = list(actions)
        self.then_submit = then_submit
        self._queue: list[str] = []

    def reset(self, task: TaskSpec, observation: str, info: dict[str, Any]) -> None:
        self._queue = list(self.actions)

    def act(self, observation: str, info: dict[str, Any]) -> str:
        if self._queue:
            return self._queue.pop(0)
        if self.then_submit:
            return "submit"
        raise RuntimeError("the scripted agent has no actions left")
