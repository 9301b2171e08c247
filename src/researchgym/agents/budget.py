"""Budgets for model calls: cost (USD), tokens and wall time, per episode or across a run.

A call is refused *before* it is made when it could overshoot by more than one reply: the
prompt alone must fit in what is left, so the worst case is the limit plus one reply's
`max_output_tokens`. A model with an unknown price cannot be held to a cost limit: its tokens
are counted, its cost is recorded as unknown, and the token and time limits still apply.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from researchgym.models.base import BudgetExceeded, Message, Model, ModelResponse, approx_tokens


@dataclass
class Budget:
    cost_limit: float | None = None
    token_limit: int | None = None
    time_limit_s: float | None = None
    #: Prefix of the exit status when this budget runs out ("" for an episode, "run_" for a run).
    scope: str = ""
    spent_cost: float = 0.0
    spent_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    unpriced_calls: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def check(self, model: Model, messages: list[Message]) -> None:
        """Raise BudgetExceeded if the next call must not be made."""
        with self._lock:
            if self.time_limit_s is not None and time.monotonic() - self.started >= self.time_limit_s:
                raise BudgetExceeded(
                    f"{self.scope}time_limit", f"the {self.scope}time limit of {self.time_limit_s:g}s is used up"
                )
            if self.token_limit is not None:
                counter = getattr(model, "count_tokens", None)
                prompt = counter(messages) if counter else sum(approx_tokens(m["content"]) for m in messages)
                if self.spent_tokens + prompt > self.token_limit:
                    raise BudgetExceeded(
                        f"{self.scope}token_limit",
                        f"the next call ({prompt} prompt tokens) would pass the {self.scope}token limit "
                        f"of {self.token_limit} ({self.spent_tokens} used)",
                    )
            if self.cost_limit is not None:
                estimate = model.estimate_input_cost(messages)
                if estimate is not None and self.spent_cost + estimate > self.cost_limit:
                    raise BudgetExceeded(
                        f"{self.scope}cost_limit",
                        f"the next call (${estimate:.4f} of prompt) would pass the {self.scope}cost limit "
                        f"of ${self.cost_limit:g} (${self.spent_cost:.4f} spent)",
                    )

    def charge(self, response: ModelResponse) -> None:
        with self._lock:
            self.calls += 1
            self.input_tokens += response.input_tokens
            self.output_tokens += response.output_tokens
            self.spent_tokens += response.input_tokens + response.output_tokens
            if response.cost is None:
                self.unpriced_calls += 1
            else:
                self.spent_cost += response.cost

    def stats(self) -> dict[str, Any]:
        """MLGym's model stats, plus how many calls had no known price."""
        return {
            "api_calls": self.calls,
            "tokens_sent": self.input_tokens,
            "tokens_received": self.output_tokens,
            "total_cost": round(self.spent_cost, 6),
            "cost_known": self.unpriced_calls == 0,
            "unpriced_calls": self.unpriced_calls,
        }
