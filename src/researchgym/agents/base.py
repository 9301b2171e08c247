"""The agent seam: something that turns an observation into the next shell command.

Everything an agent wants written into the trajectory travels with what it returns: `reset`
may return the opening record (the exact first messages, say), `act` returns an `Action` (the
command with its record: the model's replies, tokens, cost, its running stats) or a bare
command, and an exception it raises may carry the record of the turn that failed as
`exc.record`. The episode loop reads nothing else off the agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from researchgym.tasks.spec import TaskSpec


@dataclass(frozen=True)
class Action:
    """One shell command and what to record with it (JSON-able fields of the step's line;
    `model_stats`, when present, is the agent's running total and becomes the episode's)."""

    command: str
    record: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Agent(Protocol):
    name: str

    def reset(self, task: TaskSpec, observation: str, info: dict[str, Any]) -> dict[str, Any] | None:
        """Start a new episode of `task`; `observation` is the task prompt. Returns fields for
        the first step's record (or None)."""

    def act(self, observation: str, info: dict[str, Any]) -> Action | str:
        """The next action: one shell command, bare or with its record."""


def as_action(returned: Action | str) -> Action:
    if isinstance(returned, Action):
        return returned
    if isinstance(returned, str):
        return Action(returned)
    raise TypeError(f"an agent's act() must return a command (str) or an Action, not {type(returned).__name__}")


def record_of(exc: BaseException) -> dict[str, Any]:
    """The record an agent attached to the exception that ended its turn (empty if none)."""
    record = getattr(exc, "record", None)
    return record if isinstance(record, dict) else {}
