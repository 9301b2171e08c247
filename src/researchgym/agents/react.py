"""The default agent: ReAct over any model, as in MLGym's and SWE-agent's harnesses.

Each turn the model sees the system prompt (with the generated command docs), the task, its
own earlier replies and the last few observations, and answers with a short discussion and
exactly one command in one fenced block. A reply that breaks the format is shown its error and
asked again (at most `max_format_retries` times); then the episode ends with `format_error`.
Budgets are checked before every call. Prompts live in YAML (`configs/default.yaml`).
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import Environment, StrictUndefined

from researchgym.agents.base import Action
from researchgym.agents.budget import Budget
from researchgym.agents.config import AgentConfig, load_agent_config
from researchgym.errors import FormatError
from researchgym.models.base import Message, Model
from researchgym.tasks.spec import TaskSpec
from researchgym.tools import available_commands, render_command_docs

_FENCE = re.compile(r"^[ \t]*```[^\n`]*\n(.*?)^[ \t]*```[ \t]*$", re.DOTALL | re.MULTILINE)


def parse_reply(text: str) -> tuple[str, str]:
    """Split a reply into (discussion, command). Exactly one fenced block is required."""
    blocks = list(_FENCE.finditer(text))
    if not blocks:
        raise FormatError("no command found: put exactly one command in a fenced code block (```).")
    if len(blocks) > 1:
        raise FormatError(f"found {len(blocks)} code blocks; give exactly one command in one block.")
    command = blocks[0].group(1).rstrip("\n")
    if not command.strip():
        raise FormatError("the code block is empty; put one command in it.")
    return text[: blocks[0].start()].strip(), command


class ReactAgent:
    def __init__(self, model: Model, config: AgentConfig | None = None, *, run_budget: Budget | None = None) -> None:
        self.model = model
        self.config = config or load_agent_config()
        self.name = self.config.name
        self.run_budget = run_budget
        self._jinja = Environment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
        self._templates: dict[str, Any] = {}
        self.history: list[Message] = []
        self.budget = self._new_budget()

    def _new_budget(self) -> Budget:
        limits = self.config.limits
        return Budget(cost_limit=limits.cost_usd, token_limit=limits.tokens, time_limit_s=limits.time_s)

    def _render(self, template: str, **values: Any) -> str:
        compiled = self._templates.get(template)
        if compiled is None:  # compiling costs ~1 ms; every turn renders
            compiled = self._templates[template] = self._jinja.from_string(template)
        return compiled.render(**values)

    def reset(self, task: TaskSpec, observation: str, info: dict[str, Any]) -> dict[str, Any]:
        templates = self.config.templates
        self.budget = self._new_budget()
        self.history = [
            {
                "role": "system",
                "content": self._render(
                    templates.system, command_docs=render_command_docs(available_commands(info.get("tool_groups", ())))
                ),
            },
            {
                "role": "user",
                "content": self._render(
                    templates.instance, task_prompt=observation, max_steps=info.get("max_steps", task.limits.max_steps)
                ),
            },
        ]
        self._first = True
        # The exact first messages (system prompt, task), for training-data export.
        return {"opening_messages": self.opening_messages}

    @property
    def opening_messages(self) -> list[Message]:
        """The system prompt and the first user message of the episode, as sent."""
        return [dict(m) for m in self.history[:2]]

    def act(self, observation: str, info: dict[str, Any]) -> Action:
        if not self._first:
            template = self.config.templates.observation
            body = observation
            if not observation.split("(Current step:")[0].strip():
                template = self.config.templates.empty_observation
            self.history.append({"role": "user", "content": self._render(template, observation=body)})
        self._first = False
        turns: list[dict[str, Any]] = []
        try:
            return self._turn(turns)
        except Exception as exc:  # a budget, format or API error: the replies it got are recorded all the same
            # (the stats too when none came back: a model that never answered shows 0 calls)
            record = {"model_stats": self.budget.stats(), **({"model_turns": turns} if turns else {})}
            exc.record = record  # type: ignore[attr-defined]
            raise

    def _turn(self, turns: list[dict[str, Any]]) -> Action:
        """Ask the model until a reply parses (appending each reply's record to `turns`)."""
        retry: list[Message] = []
        for _attempt in range(self.config.max_format_retries + 1):
            messages = self.processed_history() + retry
            for budget in (self.budget, self.run_budget):
                if budget is not None:
                    budget.check(self.model, messages)
            response = self.model.query(messages)
            for budget in (self.budget, self.run_budget):
                if budget is not None:
                    budget.charge(response)
            turn = {
                "response": response.text,
                "input_tokens": response.input_tokens,
                "output_tokens": response.output_tokens,
                "cost": response.cost,
                "latency_s": round(response.latency_s, 3),
                "retries": response.retries,
            }
            turns.append(turn)
            try:
                thought, command = parse_reply(response.text)
            except FormatError as exc:
                turn["format_error"] = str(exc)
                retry = [
                    {"role": "assistant", "content": response.text},
                    {"role": "user", "content": self._render(self.config.templates.format_error, error=str(exc))},
                ]
                continue
            self.history.append({"role": "assistant", "content": response.text})
            return Action(command, {"model_turns": turns, "thought": thought, "model_stats": self.budget.stats()})
        raise FormatError(
            f"{len(turns)} replies in a row broke the response format; last error: {turns[-1]['format_error']}"
        )

    def processed_history(self) -> list[Message]:
        """The first two messages, every reply, and only the last N observations in full."""
        keep = self.config.history.keep_last_observations
        observations = [i for i, m in enumerate(self.history) if m["role"] == "user" and i > 1]
        old = set(observations[:-keep]) if len(observations) > keep else set()
        processed = []
        for index, message in enumerate(self.history):
            if index in old:
                lines = message["content"].count("\n") + 1
                message = {
                    "role": "user",
                    "content": self._render(self.config.templates.omitted_observation, lines=lines),
                }
            processed.append(message)
        return processed

    def stats(self) -> dict[str, Any]:
        return self.budget.stats()
