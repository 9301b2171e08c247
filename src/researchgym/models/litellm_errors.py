"""Which litellm failures mean the model cannot be used at all, and what to tell the user.

Retrying a missing or refused key, or a model name nobody serves, only burns minutes before a
vague API error; these fail at once with one line that names what to fix (the environment
variable, --model, --api-base). litellm files some of them under unrelated types (a missing
OpenAI key arrives as a 500, a missing Gemini key as a connection error), so the text is read
too. A server that cannot be reached is retried like any outage; this module only words the
error once the retries are spent.
"""

from __future__ import annotations

import os
import re
from typing import Any

_MISSING_KEY = re.compile(
    r"missing (?:\w+ )?(?:credentials|api[ _-]?key)|api[ _-]?key (?:is )?(?:missing|not (?:set|found|provided))"
    r"|no api[ _-]?key",
    re.IGNORECASE,
)
_NO_PROVIDER = re.compile(r"llm provider not provided", re.IGNORECASE)
_UNKNOWN_MODEL = re.compile(
    r"\bmodel\b[^.\n]{0,100}\b(?:not found|does not exist|is not supported|not available)"
    r"|\b(?:unknown|invalid|no such) model\b",
    re.IGNORECASE,
)
_UNREACHABLE = re.compile(
    r"connection error|connection refused|connecterror|name or service not known|nodename nor servname"
    r"|temporary failure in name resolution|failed to establish",
    re.IGNORECASE,
)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The gist of an error on one line: litellm's messages can carry whole tracebacks."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = re.sub(r"^litellm\.\w+:\s*", "", lines[0]) if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unusable(litellm: Any, exc: BaseException, *, model: str, api_base: str | None, key_given: bool) -> str | None:
    """The one-line message to fail with at once when `exc` says the model cannot work at
    all (credentials, an unknown model); None for anything retrying or reporting could fix."""
    errors = litellm.exceptions
    text = str(exc)
    # litellm files some 403s from OpenAI-compatible servers as a plain APIError.
    refused = getattr(exc, "status_code", None) in (401, 403)
    refused = refused or isinstance(exc, errors.AuthenticationError | errors.PermissionDeniedError)
    if refused or _MISSING_KEY.search(text):
        return _credentials(litellm, exc, model=model, api_base=api_base, key_given=key_given)
    if isinstance(exc, errors.BadRequestError) and _NO_PROVIDER.search(text):
        return (
            f"unknown model '{model}' (--model): litellm cannot tell which provider serves it; write it "
            "as provider/model (openai/gpt-4o, anthropic/claude-...), or as openai/NAME with --api-base "
            "for an OpenAI-compatible server"
        )
    if isinstance(exc, errors.NotFoundError) or (
        isinstance(exc, errors.BadRequestError | errors.UnprocessableEntityError) and _UNKNOWN_MODEL.search(text)
    ):
        where = f" at {api_base} (--api-base)" if api_base else ""
        fix = "check the model name (--model)" + (" and the server address (--api-base)" if api_base else "")
        return f"model '{model}' was not found{where}: {_status(exc)}{first_line(exc)}; {fix}"
    return None


def unreachable(litellm: Any, exc: BaseException) -> bool:
    """Whether `exc` says no connection could be made (not a timeout: that server was there)."""
    errors = litellm.exceptions
    if isinstance(exc, errors.Timeout):
        return False
    return bool(_UNREACHABLE.search(str(exc)))


def unreachable_message(exc: BaseException, *, model: str, api_base: str | None, attempts: int) -> str:
    if api_base:
        return (
            f"{model}: could not connect to {api_base} (--api-base) in {attempts} attempts "
            f"({first_line(exc)}); is the server running at that address?"
        )
    return (
        f"{model}: could not reach the provider's API in {attempts} attempts ({first_line(exc)}); "
        "check the network, or pass --api-base for a server of your own"
    )


def _credentials(litellm: Any, exc: BaseException, *, model: str, api_base: str | None, key_given: bool) -> str:
    detail = f"({_status(exc)}{first_line(exc)})"
    if _MISSING_KEY.search(str(exc)):
        problem = f"{model}: no API key {detail}"
    else:
        who = f"the server at {api_base} (--api-base)" if api_base else "the provider"
        problem = f"{model}: {who} refused the credentials {detail}"
    if key_given:
        return f"{problem}; check the api_key given to the model"
    missing = missing_keys(litellm, model)
    if len(missing) == 1:
        return f"{problem}; set {missing[0]} and run again"
    if missing:
        return f"{problem}; set the variables litellm reads for this provider ({', '.join(missing)}) and run again"
    present = provider_key(litellm, model)
    if present:
        return f"{problem}; {present} is set but was refused: check its value"
    return f"{problem}; set the API key litellm reads for this provider and run again"


def missing_keys(litellm: Any, model: str) -> list[str]:
    """The environment variables litellm wants for `model`'s provider and does not find."""
    try:
        return [str(key) for key in litellm.validate_environment(model=model).get("missing_keys", [])]
    except Exception:  # an unknown provider: nothing to name
        return []


def provider_key(litellm: Any, model: str) -> str | None:
    """The provider's PROVIDER_API_KEY (OPENAI_API_KEY, ...) when it is set in the environment."""
    try:
        provider = str(litellm.get_llm_provider(model=model)[1])
    except Exception:
        return None
    name = f"{provider.upper()}_API_KEY"
    return name if os.environ.get(name) else None


def _status(exc: BaseException) -> str:
    code = getattr(exc, "status_code", None)
    return f"{code}: " if isinstance(code, int) else ""
