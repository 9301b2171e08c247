"""Deterministic models for runner tests, importable by name (`support_models:Fixer`)."""

from __future__ import annotations

import time

from researchgym.models.base import ModelResponse, approx_tokens

BETTER = {
    "Battle of the Sexes": "def row_strategy(history):\n    return 0",
    "Prisoner's Dilemma": "def row_strategy(history):\n    return 1",
    "Colonel Blotto": "def row_strategy(history):\n    return [30, 30, 30, 30, 0, 0]",
}


class _Scripted:
    name = "scripted"
    max_output_tokens = 256
    delay_s = 0.0

    def __init__(self, **_: object) -> None:
        self.turn = 0

    def commands(self, task_text: str) -> list[str]:
        raise NotImplementedError

    def query(self, messages):
        time.sleep(self.delay_s)
        if len(messages) <= 2:  # a new episode
            self.turn = 0
        commands = self.commands(messages[1]["content"])
        command = commands[min(self.turn, len(commands) - 1)]
        self.turn += 1
        text = f"Next step.\n```\n{command}\n```"
        return ModelResponse(
            text, sum(approx_tokens(m["content"]) for m in messages), approx_tokens(text), 0.001, self.name
        )

    def estimate_input_cost(self, messages):
        return 0.0


class Submitter(_Scripted):
    """Validates and submits the starter artefact."""

    name = "support_models:Submitter"

    def commands(self, task_text):
        return ["validate", "submit"]


class Fixer(_Scripted):
    """Writes a better strategy for the game in the prompt, validates, submits."""

    name = "support_models:Fixer"

    def commands(self, task_text):
        source = next(code for game, code in BETTER.items() if game in task_text)
        return [f"cat > strategy.py <<'PYEOF'\n{source}\nPYEOF", "validate", "submit"]


class SlowFixer(Fixer):
    name = "support_models:SlowFixer"
    delay_s = 0.4


class Discarder(_Scripted):
    """Plays a strategy that fails with a lone surrogate (U+D800, JSON's \\ud800 escape) in its
    error message, on validation and on submission: the red team's way to end an episode it is
    losing as `failed`, so that --resume plays it again (test_redteam_games)."""

    name = "support_models:Discarder"

    def commands(self, task_text):
        strategy = "def row_strategy(history):\n    raise ValueError('lost ' + chr(0xD800))\n"
        return [f"cat > strategy.py <<'EOF'\n{strategy}EOF", "validate", "submit"]
