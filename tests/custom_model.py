"""A model backend a plug-in would ship, for the tests: registered under a short name (MODELS, or
the `researchgym.models` entry point), built with only the settings its constructor declares."""

from researchgym.models.base import ModelResponse


class SubmitAtOnce:
    """Validates, then submits; remembers the settings it was built with."""

    built_with: dict = {}

    def __init__(self, temperature: float = 0.0, max_output_tokens: int = 1024) -> None:
        SubmitAtOnce.built_with = {"temperature": temperature, "max_output_tokens": max_output_tokens}
        self.name = "submit-at-once"
        self.max_output_tokens = max_output_tokens
        self._replies = ["validate", "submit"]

    def query(self, messages):
        command = self._replies.pop(0) if self._replies else "submit"
        return ModelResponse(text=f"DISCUSSION\nNext.\n\n```\n{command}\n```\n", model=self.name)

    def estimate_input_cost(self, messages):
        return 0.0
