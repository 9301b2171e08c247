"""Exceptions that carry the reason an episode or a command ended.

Control flow at episode boundaries uses these instead of sentinel values, so that the reason
(and the exit status recorded in the trajectory) travels with the exception.
"""

from __future__ import annotations

from researchgym.strict_json import valid_text


class ResearchGymError(Exception):
    """Base class for every error raised on purpose by researchgym."""


class TaskConfigError(ResearchGymError):
    """A task or dataset configuration is invalid. The message names the file and field."""

    def __init__(self, path: object, field: str, problem: str) -> None:
        self.path = str(path)
        self.field = field
        self.problem = problem
        where = f"{self.path}: field '{field}'" if field else self.path
        super().__init__(f"{where}: {problem}")


class UnknownNameError(ResearchGymError, KeyError):
    """A plugin (task, sandbox, agent) was looked up by a name nobody registered."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        import difflib

        self.kind, self.name, self.known = kind, name, sorted(known)
        close = difflib.get_close_matches(name, self.known, n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        message = f"unknown {kind} '{name}'.{hint} Known {kind}s: {', '.join(self.known) or '(none)'}"
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]


class SandboxError(ResearchGymError):
    """The sandbox could not be created or has failed irrecoverably."""


class FormatError(ResearchGymError):
    """The agent's reply could not be parsed into exactly one action."""

    status = "format_error"


class EvaluationError(ResearchGymError):
    """Scoring failed. `status` is the exit status to record (e.g. submission_not_found);
    `detail` is the end of the evaluator's output, shown to the agent only for validation.
    Both may quote what the agent chose (a file name, its code's error), so any surrogate in them
    is replaced: they go to the trajectory and the store, which must be able to write them."""

    def __init__(self, status: str, message: str, detail: str = "") -> None:
        self.status = status
        self.detail = valid_text(detail)
        super().__init__(valid_text(message))
