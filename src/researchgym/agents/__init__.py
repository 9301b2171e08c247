"""Agents, looked up by name (`baseline`, entry points `researchgym.agents`, or `module:Object`)."""

from __future__ import annotations

from typing import Any

from researchgym.agents.base import Agent
from researchgym.plugins import Registry

AGENTS: Registry = Registry("agent", entry_point_group="researchgym.agents")
AGENTS.add("baseline", "researchgym.agents.baseline:BaselineAgent")
AGENTS.add("scripted", "researchgym.agents.scripted:ScriptedAgent")
AGENTS.add("react", "researchgym.agents.react:ReactAgent")


def create_agent(name: str, **kwargs: Any) -> Agent:
    return AGENTS.get(name)(**kwargs)


__all__ = ["AGENTS", "Agent", "create_agent"]
