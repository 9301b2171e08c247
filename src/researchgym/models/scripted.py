"""Models that need no network: a list of replies (tests), a trajectory replayed, a human."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from researchgym.models.base import Message, ModelAPIError, ModelResponse, approx_tokens


class ScriptedModel:
    """Answers with the given replies in order; tokens are estimated, cost is optional."""

    def __init__(
        self,
        replies: Iterable[str],
        *,
        name: str = "scripted",
        cost_per_call: float = 0.0,
        max_output_tokens: int = 1024,
    ) -> None:
        self.name = name
        self.replies = list(replies)
        self.cost_per_call = cost_per_call
        self.max_output_tokens = max_output_tokens
        self.calls: list[list[Message]] = []

    def query(self, messages: list[Message]) -> ModelResponse:
        self.calls.append([dict(m) for m in messages])
        if not self.replies:
            raise ModelAPIError(f"{self.name}: no scripted reply left")
        text = self.replies.pop(0)
        return ModelResponse(
            text, sum(approx_tokens(m["content"]) for m in messages), approx_tokens(text), self.cost_per_call, self.name
        )

    def estimate_input_cost(self, messages: list[Message]) -> float | None:
        return 0.0


class ReplayModel(ScriptedModel):
    """Replays the model replies recorded in a trajectory file, in order: researchgym's own
    (.jsonl, one record a line) or MLGym's (.traj, one JSON object whose `trajectory` lists
    the steps)."""

    def __init__(self, trajectory: str | Path) -> None:
        with open(trajectory, encoding="utf-8") as handle:
            text = handle.read()
        replies = mlgym_replies(text)
        if replies is None:  # researchgym's own: the replies of every step, in order
            from researchgym.runs.trajectory import load_trajectory

            recorded = load_trajectory(trajectory)
            # the auto-submission holds the replies of the move that failed (a format error, a
            # budget): an episode that ended that way on its first move has them nowhere else
            records: list[Any] = [*recorded.steps, *([recorded.autosubmit] if recorded.autosubmit else [])]
            replies = [turn["response"] for record in records for turn in record.get("model_turns", [])]
        if not replies:
            raise ModelAPIError(f"{trajectory}: the trajectory holds no model replies to replay")
        super().__init__(replies, name=f"replay:{trajectory}")


#: MLGym's pseudo-actions for an episode its harness ended (context, cost, format, errors):
#: they were never commands, so a replay stops before them.
MLGYM_EXITS = frozenset({"exit_context", "exit_cost", "exit_error", "exit_format", "exit_api", "exit_forfeit", "skip"})


def mlgym_replies(text: str) -> list[str] | None:
    """The replies that make the react agent run an MLGym trajectory's actions, one per step;
    None when `text` is not an MLGym trajectory (a JSON object with a `trajectory` list).

    A step's recorded response is used when it parses to the recorded action; otherwise (MLGym
    parsed some replies more leniently) the reply is rebuilt from its thought and action."""
    from researchgym.agents.react import parse_reply  # here: agents import models
    from researchgym.errors import FormatError

    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("trajectory"), list):
        return None
    replies = []
    for step in data["trajectory"]:
        action = str(step.get("action") or "").strip()
        if not action or action in MLGYM_EXITS:
            break
        response = str(step.get("response") or "")
        try:
            same = parse_reply(response)[1].strip() == action
        except FormatError:
            same = False
        if same:
            replies.append(response)
        else:
            thought = str(step.get("thought") or "").strip()
            replies.append(f"{thought}\n\n```\n{action}\n```" if thought else f"```\n{action}\n```")
    return replies


class HumanModel:
    """You are the model: the last message is shown, and your reply is read from the terminal
    (end it with a line containing only `.`)."""

    name = "human"
    max_output_tokens = 100_000

    def query(self, messages: list[Message]) -> ModelResponse:
        print(messages[-1]["content"], file=sys.stderr)
        print("\n--- your reply (end with a line containing only '.') ---", file=sys.stderr)
        started = time.perf_counter()
        lines = []
        for line in sys.stdin:
            if line.rstrip("\n") == ".":
                break
            lines.append(line)
        else:
            if not lines:
                raise ModelAPIError("human: standard input closed")
        text = "".join(lines)
        return ModelResponse(text, 0, approx_tokens(text), 0.0, self.name, latency_s=time.perf_counter() - started)

    def estimate_input_cost(self, messages: list[Message]) -> float | None:
        return 0.0


class SleepingModel:
    """A stand-in for a remote model, for throughput benchmarks: every call sleeps
    RESEARCHGYM_SLEEP_S seconds (default 1), then answers `echo step` until the episode has had
    RESEARCHGYM_SLEEP_CALLS replies (default 10), then `submit`."""

    name = "sleeping"
    max_output_tokens = 16

    def __init__(self, **_: object) -> None:
        import os

        self.delay_s = float(os.environ.get("RESEARCHGYM_SLEEP_S", "1"))
        self.calls_per_episode = int(os.environ.get("RESEARCHGYM_SLEEP_CALLS", "10"))

    def query(self, messages: list[Message]) -> ModelResponse:
        time.sleep(self.delay_s)
        turn = sum(1 for m in messages if m["role"] == "assistant")
        command = "submit" if turn + 1 >= self.calls_per_episode else "echo step"
        return ModelResponse(f"```\n{command}\n```", 1, 1, 0.0, self.name)

    def estimate_input_cost(self, messages: list[Message]) -> float | None:
        return 0.0
