"""Any hosted or OpenAI-compatible model through litellm, with retries and honest costs.

litellm reads its price table from the copy shipped inside the package (never fetched), so
costs work offline. Rate limits, server errors, timeouts and refused connections are retried
with exponential backoff and jitter, honouring Retry-After; a context overflow is reported as
such, not retried. Missing or refused credentials and unknown model names are not retried
either: they end the episode at once as `model_unavailable` (see litellm_errors), as does a
server that stays unreachable through every retry before it ever answered. A model with no
known price still works: its tokens are counted and its cost is None.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from researchgym.models.base import (
    ContextWindowExceeded,
    Message,
    ModelAPIError,
    ModelError,
    ModelResponse,
    ModelUnavailable,
)
from researchgym.models.litellm_errors import provider_key, unreachable, unreachable_message, unusable

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _litellm() -> Any:
    import litellm  # imported lazily: it takes seconds

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


class LiteLLMModel:
    def __init__(
        self,
        name: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.0,
        top_p: float | None = 0.95,
        max_output_tokens: int = 1024,
        timeout_s: float = 120.0,
        max_attempts: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        input_cost_per_token: float | None = None,
        output_cost_per_token: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.api_base = api_base
        self._key_given = bool(api_key)
        # An OpenAI-compatible server gets the provider's key from the environment when one is
        # set (a server started with --api-key wants it), and a placeholder otherwise.
        if not api_key and api_base and not provider_key(_litellm(), name):
            api_key = "not-needed"
        self.api_key = api_key or None
        self.temperature, self.top_p = temperature, top_p
        self.max_output_tokens = max_output_tokens
        self.timeout_s = timeout_s
        self.max_attempts = max(1, max_attempts)
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self._prices = self._find_prices(input_cost_per_token, output_cost_per_token)
        self._rng = random.Random(seed)
        #: Calls that got an answer: a server unreachable before the first is `model_unavailable`.
        self.answered_calls = 0

    def _find_prices(self, given_in: float | None, given_out: float | None) -> tuple[float, float] | None:
        if given_in is not None and given_out is not None:
            return given_in, given_out
        table = _litellm().model_cost
        for key in (self.name, self.name.split("/", 1)[-1]):
            entry = table.get(key)
            if entry and "input_cost_per_token" in entry and "output_cost_per_token" in entry:
                return float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"])
        return None

    # ------------------------------------------------------------------ costs
    def count_tokens(self, messages: list[Message]) -> int:
        return int(_litellm().token_counter(model=self.name, messages=messages))

    def estimate_input_cost(self, messages: list[Message]) -> float | None:
        return None if self._prices is None else self.count_tokens(messages) * self._prices[0]

    # ------------------------------------------------------------------ calls
    def query(self, messages: list[Message]) -> ModelResponse:
        litellm = _litellm()
        import openai  # litellm's own dependency; the base of its API errors

        errors = litellm.exceptions
        retryable = (
            errors.RateLimitError,
            errors.InternalServerError,
            errors.ServiceUnavailableError,
            errors.APIConnectionError,
            errors.Timeout,
            errors.BadGatewayError,
        )
        started = time.perf_counter()
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = litellm.completion(
                    model=self.name,
                    messages=messages,
                    api_base=self.api_base,
                    api_key=self.api_key,
                    temperature=self.temperature,
                    top_p=self.top_p,
                    max_tokens=self.max_output_tokens,
                    timeout=self.timeout_s,
                    num_retries=0,
                )
                break
            except errors.ContextWindowExceededError as exc:
                raise ContextWindowExceeded(
                    f"{self.name}: the prompt is longer than the context window: {exc}"
                ) from exc
            except openai.APIError as exc:  # every litellm API error derives from it
                problem = unusable(litellm, exc, model=self.name, api_base=self.api_base, key_given=self._key_given)
                if problem is not None:
                    raise ModelUnavailable(problem) from exc
                if not isinstance(exc, retryable):
                    if "context" in str(exc).lower() and "length" in str(exc).lower():
                        raise ContextWindowExceeded(f"{self.name}: {exc}") from exc
                    raise ModelAPIError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
                if attempt == self.max_attempts:
                    raise self._gave_up(attempt, exc) from exc
                time.sleep(self._delay(attempt, exc))
        self.answered_calls += 1
        usage = getattr(response, "usage", None)
        input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = None
        if self._prices is not None:
            cost = input_tokens * self._prices[0] + output_tokens * self._prices[1]
        text = response.choices[0].message.content or ""
        return ModelResponse(
            text,
            input_tokens,
            output_tokens,
            cost,
            self.name,
            latency_s=time.perf_counter() - started,
            retries=attempt - 1,
        )

    def _gave_up(self, attempts: int, exc: Exception) -> ModelError:
        """The error once the retries are spent: a server never reached is named, and is
        `model_unavailable` if this model has not answered once."""
        litellm = _litellm()
        if unreachable(litellm, exc):
            message = unreachable_message(exc, model=self.name, api_base=self.api_base, attempts=attempts)
            return ModelAPIError(message) if self.answered_calls else ModelUnavailable(message)
        return ModelAPIError(f"{self.name}: gave up after {attempts} attempts: {type(exc).__name__}: {exc}")

    def _delay(self, attempt: int, exc: Exception) -> float:
        """Exponential backoff with full jitter, or the server's Retry-After if it sent one."""
        retry_after = _retry_after(exc)
        if retry_after is not None:
            return min(retry_after, self.max_backoff_s)
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return self._rng.uniform(ceiling / 2, ceiling)


def _retry_after(exc: Exception) -> float | None:
    """The server's Retry-After in seconds: litellm keeps the real response headers in
    `litellm_response_headers` (its `response` is a stand-in without them)."""
    value = None
    for headers in (
        getattr(exc, "litellm_response_headers", None),
        getattr(exc, "headers", None),
        getattr(getattr(exc, "response", None), "headers", None),
    ):
        if headers:
            value = headers.get("retry-after") or headers.get("Retry-After")
            if value is not None:
                break
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
