"""`--model mock`: a free, deterministic model for testing the plumbing (agent, sandbox,
evaluation, trajectories, runs) on any task, with no network, key or weights.

By default it lists the workspace, validates and submits. `mock:PATH` plays the replies in
PATH instead (a JSON or YAML list of strings, or a text file whose replies are separated by
lines holding only `---`), verbatim, so broken replies test the format checks too; after the
last one it submits. Each call gets the next reply, and a conversation with no reply in it yet
(a new episode) starts the script again, so one model can play episode after episode (one at a
time) and the same episode always gets the same answers, whatever the seed. Tokens are estimated
from the text (about four characters a token); nothing costs anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from researchgym.models.base import Message, ModelResponse, ModelUnavailable, approx_tokens


def _reply(thought: str, command: str) -> str:
    return f"DISCUSSION\n{thought}\n\n```\n{command}\n```\n"


DEFAULT_SCRIPT = (
    _reply("I am researchgym's mock model and play a fixed script. First, the files of the task.", "ls"),
    _reply("Next, the score of the workspace as it stands.", "validate"),
    _reply("That is the whole script: I submit.", "submit"),
)
#: What the mock answers once its replies are used up.
FINAL_REPLY = _reply("My scripted replies are used up: I submit.", "submit")
#: The line that separates replies in a text replies file.
SEPARATOR = "---"


class MockModel:
    def __init__(self, replies_file: str | Path | None = None, *, max_output_tokens: int = 1024) -> None:
        self.replies_file = Path(replies_file) if replies_file is not None else None
        self.name = "mock" if self.replies_file is None else f"mock:{self.replies_file}"
        self.replies = list(DEFAULT_SCRIPT) if self.replies_file is None else load_replies(self.replies_file)
        self.max_output_tokens = max_output_tokens
        self._next = 0

    def query(self, messages: list[Message]) -> ModelResponse:
        # Not the count of replies in the conversation: a reply that broke the format is
        # dropped from it once the retry parses, and the script must still move on.
        if not any(message["role"] == "assistant" for message in messages):
            self._next = 0
        turn, self._next = self._next, self._next + 1
        text = self.replies[turn] if turn < len(self.replies) else FINAL_REPLY
        return ModelResponse(
            text,
            sum(approx_tokens(message["content"]) for message in messages),
            approx_tokens(text),
            0.0,
            self.name,
        )

    def estimate_input_cost(self, messages: list[Message]) -> float | None:
        return 0.0


def load_replies(path: Path) -> list[str]:
    """The replies in `path`, in order; a ModelUnavailable naming the file when there are none."""
    usage = (
        "give a JSON or YAML list of replies, or a text file with one reply per entry "
        f"separated by lines holding only '{SEPARATOR}'"
    )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelUnavailable(f"mock:{path}: cannot read the replies file ({exc.strerror or exc}); {usage}") from exc
    entries: Any
    if path.suffix.lower() == ".json":
        try:
            entries = json.loads(text) if text.strip() else []
        except json.JSONDecodeError as exc:
            raise ModelUnavailable(f"mock:{path}: not valid JSON ({exc}); {usage}") from exc
    elif path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            entries = yaml.safe_load(text) or []
        except yaml.YAMLError as exc:
            raise ModelUnavailable(f"mock:{path}: not valid YAML ({exc}); {usage}") from exc
    else:
        entries = _split(text)
    if isinstance(entries, dict) and "replies" in entries:
        entries = entries["replies"]
    if not isinstance(entries, list):
        raise ModelUnavailable(f"mock:{path}: expected a list of replies, found {type(entries).__name__}; {usage}")
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, str):
            raise ModelUnavailable(
                f"mock:{path}: reply {index} is {type(entry).__name__}, not text; write every reply as a string"
            )
    replies = [entry for entry in entries if entry.strip()]
    if not replies:
        raise ModelUnavailable(f"mock:{path}: the replies file holds no replies; {usage}")
    return replies


def _split(text: str) -> list[str]:
    """The replies of a text file: the blocks between separator lines."""
    replies: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if line.strip() == SEPARATOR:
            replies.append([])
        else:
            replies[-1].append(line)
    return ["".join(lines).strip("\n") + "\n" for lines in replies if "".join(lines).strip()]
