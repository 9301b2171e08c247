"""The model seam: messages in, one reply out, with its token usage and cost.

Every backend (litellm, a local GGUF model, replay, scripted, human) answers `query` with a
`ModelResponse`. Failures that end an episode are typed so the agent loop can record the exit
status: a context overflow, an API error that outlived its retries, a budget that would be
exceeded, a model that cannot be used at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from researchgym.errors import ResearchGymError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


@dataclass
class ModelResponse:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    #: USD for this call; None when the model's price is unknown (tokens are still counted).
    cost: float | None = 0.0
    model: str = ""
    latency_s: float = 0.0
    #: How many failed attempts preceded this answer.
    retries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Model(Protocol):
    name: str
    #: The most tokens one reply may have; bounds how far a call can overshoot a budget.
    max_output_tokens: int

    def query(self, messages: list[Message]) -> ModelResponse: ...

    def estimate_input_cost(self, messages: list[Message]) -> float | None:
        """USD the prompt of a call would cost before any output, or None if unknown."""
        ...


class ModelError(ResearchGymError):
    """A model call failed. `status` is the episode exit status it leads to."""

    status = "api_error"


class ContextWindowExceeded(ModelError):
    status = "context_exceeded"


class ModelAPIError(ModelError):
    status = "api_error"


class ModelUnavailable(ModelError):
    """The model cannot answer at all: credentials missing or refused, no such model, weights
    or a replies file missing (raised at once: retrying cannot help), or a server that stayed
    unreachable through every retry before it ever answered. Its own status lets a run tell a
    model that never worked from one that failed along the way."""

    status = "model_unavailable"


class BudgetExceeded(ModelError):
    """The next call could exceed a cost, token or time budget; it was not made."""

    def __init__(self, status: str, message: str) -> None:
        self.status = status
        super().__init__(message)


def approx_tokens(text: str) -> int:
    """A cheap token estimate (about four characters a token) for backends without a tokenizer."""
    return max(1, len(text) // 4)
