"""The ReAct agent's configuration: prompts as Jinja templates and the knobs, from YAML.

`configs/default.yaml` holds every default. A user file overrides only the fields it names
(nested mappings are merged), so a one-line file can change a single template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, TemplateSyntaxError
from pydantic import BaseModel, ConfigDict, Field, field_validator

from researchgym.tasks.spec import _read_yaml, validate_model

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "default.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSettings(_Strict):
    temperature: float = Field(0.0, ge=0)
    top_p: float | None = Field(0.95, gt=0, le=1)
    max_output_tokens: int = Field(1024, gt=0)


class HistorySettings(_Strict):
    keep_last_observations: int = Field(5, ge=1)


class EpisodeLimits(_Strict):
    cost_usd: float | None = Field(4.0, gt=0)
    tokens: int | None = Field(None, gt=0)
    time_s: float | None = Field(None, gt=0)


class Templates(_Strict):
    system: str
    instance: str
    observation: str
    empty_observation: str
    format_error: str
    omitted_observation: str

    @field_validator("*")
    @classmethod
    def _compiles(cls, text: str) -> str:
        """A template that does not parse is refused with the file, not mid-episode."""
        try:
            Environment().parse(text)
        except TemplateSyntaxError as exc:
            raise ValueError(f"not a valid Jinja template (line {exc.lineno}): {exc.message}") from None
        return text


#: The codes the editor's lint gate refuses an edit for, when they are new: MLGym's set.
MLGYM_LINT_SELECT = ("F821", "F822", "F831", "E111", "E112", "E113", "E999", "E902")


class AgentConfig(_Strict):
    name: str = "react"
    model: ModelSettings = Field(default_factory=ModelSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    max_format_retries: int = Field(2, ge=0)
    limits: EpisodeLimits = Field(default_factory=EpisodeLimits)
    #: flake8-style codes an edit of a Python file may not introduce (edit/insert refuse it);
    #: an empty list turns the gate off. Known: E999, E902, E111 and pyflakes' F-codes.
    lint_select: list[str] = Field(default_factory=lambda: list(MLGYM_LINT_SELECT))
    templates: Templates

    def tool_env(self) -> dict[str, str]:
        """The variables the sandbox's commands read for this configuration."""
        return {"RESEARCHGYM_LINT": ",".join(self.lint_select) or "off"}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def load_agent_config(path: str | Path | None = None, **overrides: Any) -> AgentConfig:
    """The default configuration, with a user YAML file and then keyword overrides on top."""
    data = _read_yaml(DEFAULT_CONFIG)
    source = DEFAULT_CONFIG
    if path is not None:
        source = Path(path)
        data = _merge(data, _read_yaml(source))
    data = _merge(data, overrides)
    return validate_model(AgentConfig, data, source)


def dump_default_config() -> str:
    return yaml.safe_dump(load_agent_config().model_dump(), sort_keys=False)
