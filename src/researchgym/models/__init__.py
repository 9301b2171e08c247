"""Model backends, chosen from a name.

local/smollm2            a real offline model (extra `local-llm`)
NAME                     a backend registered in MODELS, or under the `researchgym.models`
                         entry point (a plug-in's short name, as for sandboxes and agents)
mock                     a free, deterministic script (list, validate, submit) for testing
mock:PATH                the replies in PATH (JSON/YAML list, or text split by `---` lines)
replay:PATH              the replies recorded in a trajectory, in order
human                    you type the replies
module:Object            your own class, called with the keyword arguments
anything else            litellm (`openai/gpt-4o`, `anthropic/claude-...`; --api-base for
                         OpenAI-compatible servers such as vLLM, llama.cpp or ollama)
"""

from __future__ import annotations

from typing import Any

from researchgym.models.base import (
    BudgetExceeded,
    ContextWindowExceeded,
    Message,
    Model,
    ModelAPIError,
    ModelError,
    ModelResponse,
    ModelUnavailable,
)
from researchgym.plugins import Registry, load_object

#: Model backends by short name: `MODELS.add("mine", "pkg.module:Class")`, or a plug-in's
#: `researchgym.models` entry point. create_model looks here before handing a name to litellm.
MODELS: Registry = Registry("model", entry_point_group="researchgym.models")
MODELS.add("mock", "researchgym.models.mock:MockModel")


def create_model(name: str, **kwargs: Any) -> Model:
    """Build the model `name` names. Settings (temperature, max_output_tokens, top_p, api_base,
    ...) are offered to every backend and each takes what it can use, so callers never decide
    per backend: local models take temperature, output cap and seed; the mock takes the output
    cap; replays and the human take none; a registered or `module:Object` class takes what its
    constructor declares; litellm takes all (api_base: an OpenAI-compatible server; None means
    the provider's own)."""
    if name.startswith("local/"):
        from researchgym.models.local import LOCAL_MODELS

        if name not in LOCAL_MODELS:
            known = ", ".join(sorted(LOCAL_MODELS))
            raise ModelUnavailable(f"unknown local model '{name}' (--model); known: {known}")
        return LOCAL_MODELS[name](**_only(kwargs, "max_output_tokens", "temperature", "seed"))
    if name.startswith("mock:"):
        from researchgym.models.mock import MockModel

        return MockModel(name.split(":", 1)[1], **_only(kwargs, "max_output_tokens"))
    if name.startswith("replay:"):
        from researchgym.models.scripted import ReplayModel

        return ReplayModel(name.split(":", 1)[1])
    if name == "human":
        from researchgym.models.scripted import HumanModel

        return HumanModel()
    registered = MODELS.find(name)
    if registered is not None:
        return _construct(registered, kwargs)
    if ":" in name and not name.startswith(("http:", "https:")):
        return _construct(load_object(name), kwargs)
    from researchgym.models.litellm_model import LiteLLMModel

    return LiteLLMModel(name, **kwargs)


def check_model(name: str) -> None:
    """Refuse a model name that cannot work, before a run starts, without loading weights or
    calling an API: an unknown local model, a replay or mock file that is missing or holds no
    replies, a `module:Object` that does not import, a name litellm cannot place. Raises
    ModelUnavailable naming --model."""
    if name.startswith("local/"):
        from researchgym.models.local import LOCAL_MODELS

        if name not in LOCAL_MODELS:
            raise ModelUnavailable(f"unknown local model '{name}' (--model); known: {', '.join(sorted(LOCAL_MODELS))}")
        return
    if name.startswith(("mock:", "replay:")):
        try:
            create_model(name)  # reads and checks the file, nothing more
        except OSError as exc:
            raise ModelUnavailable(f"--model {name}: cannot read {exc.filename or name}: {exc.strerror}") from None
        return
    if name == "human" or MODELS.find(name) is not None:
        return
    if ":" in name and not name.startswith(("http:", "https:")):
        try:
            load_object(name)
        except Exception as exc:  # the user's module: a missing name, a syntax error, an error on import
            raise ModelUnavailable(f"--model {name}: cannot load it ({type(exc).__name__}: {exc})") from None
        return
    import contextlib
    import io

    import litellm

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # litellm prints its own hints
            litellm.get_llm_provider(model=name)
    except Exception:  # litellm's BadRequestError: no provider named, none it can guess
        raise ModelUnavailable(
            f"unknown model '{name}' (--model): litellm cannot tell which provider serves it; write it as "
            "provider/model (openai/gpt-4o, anthropic/claude-...), or openai/NAME with --api-base for a "
            "local server"
        ) from None


def _construct(factory: Any, kwargs: dict[str, Any]) -> Model:
    """A user's model class gets the settings its constructor takes (all, if it takes **kwargs)."""
    import inspect

    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return factory(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return factory(**kwargs)
    names = {p.name for p in parameters}
    return factory(**{k: v for k, v in kwargs.items() if k in names})


def _only(kwargs: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k in keys and v is not None}


__all__ = [
    "MODELS",
    "BudgetExceeded",
    "ContextWindowExceeded",
    "Message",
    "Model",
    "ModelAPIError",
    "ModelError",
    "ModelResponse",
    "ModelUnavailable",
    "check_model",
    "create_model",
]
