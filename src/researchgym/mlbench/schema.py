"""One ML-Bench sample, in the dataset's schema plus the fields an offline suite adds.

The dataset stores `arguments` as a string holding a dict (the original read it with `eval`);
here it is read with `json.loads`, else `ast.literal_eval`, which evaluates literals only.
"""

from __future__ import annotations

import ast
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

BASH_TYPES = ("bash script", "bash", "shell")


class Sample(BaseModel):
    model_config = ConfigDict(extra="ignore")

    github_id: int | str = ""
    github: str = ""
    repo_id: int | str = ""
    id: int | str
    #: Folder to run in, relative to the repository root.
    path: str = "."
    #: The argument values the command must set: option name (no dashes) -> value as text.
    arguments: dict[str, str] = Field(default_factory=dict)
    instruction: str
    #: The README segment that says how to do it.
    oracle: str = ""
    #: "Bash Script" or a Python type.
    type: str = "Bash Script"
    #: The gold command or code.
    output: str = ""
    prefix_code: str = ""
    # ---- offline-suite extensions (absent in the hub dataset)
    #: Name of the repository pin (repos.yaml); else derived from `github`.
    repo: str | None = None
    #: Bash run in `path` before the command, to create its inputs.
    setup: str = ""
    #: Files (relative to `path`) the command must create.
    expected_outputs: list[str] = Field(default_factory=list)
    #: A regular expression the command's output must match.
    expected_stdout: str | None = None
    timeout_s: float = Field(60.0, gt=0)
    #: Options (names as in `arguments`, or destinations) an answer may set to any value: the
    #: judge fails every other option that differs from the gold's value and from the default.
    free_arguments: list[str] = Field(default_factory=list)
    oracle_source: str = ""

    @field_validator("arguments", mode="before")
    @classmethod
    def _arguments_from_text(cls, value: Any) -> Any:
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                try:
                    value = ast.literal_eval(value)
                except (ValueError, SyntaxError) as exc:
                    raise ValueError(f"not a dict literal: {value[:80]!r}") from exc
        if not isinstance(value, dict):
            raise ValueError(f"must be a mapping of argument names to values, got {type(value).__name__}")
        return {str(k).lstrip("-"): _as_text(v) for k, v in value.items()}

    @property
    def is_bash(self) -> bool:
        return self.type.strip().lower() in BASH_TYPES

    @property
    def repo_name(self) -> str:
        if self.repo:
            return self.repo
        return self.github.rstrip("/").rsplit("/", 1)[-1] or str(self.repo_id)

    @property
    def key(self) -> str:
        return f"{self.repo_name}#{self.id}"


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return " ".join(_as_text(v) for v in value)
    return str(value)
