"""What a run is asked to do, typed and checked once: built from the command line, a YAML file
of run options (`researchgym run -c`), or a run folder's run.json on resume, and handed as is
to every episode (a thread here or a Ray worker elsewhere)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from researchgym.errors import ResearchGymError


@dataclass(frozen=True)
class Method:
    """Who plays: an agent name, and a model name for agents that need one."""

    agent: str
    model: str | None = None

    @property
    def label(self) -> str:
        return self.model or self.agent


class RunConfigError(ResearchGymError):
    """A run configuration (run.json, or options given in code) is invalid; names the field."""


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    tasks: list[str] = Field(min_length=1)
    methods: list[Method] = Field(min_length=1)
    seeds: list[Annotated[int, Field(ge=0)]] = Field(min_length=1)
    sandbox: str = "bwrap"
    max_steps: int | None = Field(None, ge=1)
    cost_limit: float | None = Field(None, gt=0)
    api_base: str | None = None
    #: Sampling temperature for every model (over the agent config's), and the agent config
    #: file (an absolute path): both reach every episode, whichever executor plays it.
    temperature: float | None = Field(None, ge=0)
    agent_config: str | None = None
    max_episodes: int | None = Field(None, ge=1)
    max_sandboxes: int | None = Field(None, ge=1)
    max_calls_per_provider: int = Field(8, ge=1)
    #: Host tools for the agents (researchgym.tools.services.ResearchToolsConfig as a dict).
    research_tools: dict[str, Any] | None = None
    run_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12], min_length=1)

    @model_validator(mode="after")
    def _each_once(self) -> RunConfig:
        """An episode is stored by (task, method, seed): one listed twice would play twice and
        be stored once."""
        methods = [f"{m.agent} on {m.model}" if m.model else m.agent for m in self.methods]
        for name, items in (("tasks", self.tasks), ("methods", methods), ("seeds", [str(s) for s in self.seeds])):
            twice = sorted({item for item in items if items.count(item) > 1})
            if twice:
                raise ValueError(f"field '{name}': {', '.join(twice)} listed more than once")
        return self

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise RunConfigError(f"run configuration: {_problems(exc)}") from None

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "run.json") -> RunConfig:
        """A run configuration as stored; an unreadable or invalid one names `source` and the field."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RunConfigError(f"{source}: not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise RunConfigError(f"{source}: expected a JSON object of run options")
        try:
            return cls(**data)
        except RunConfigError as exc:
            raise RunConfigError(f"{source}: {str(exc).removeprefix('run configuration: ')}") from None


def _problems(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"field '{where}': {message}" if where else message)
    return "; ".join(problems)
