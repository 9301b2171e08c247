"""The agent contract: what an agent returns is all the episode loop reads. An Action's record
lands in its step's trajectory line, reset's record in the first, an exception's record in the
autosubmission; the episode's model stats are the last ones an agent reported."""

from __future__ import annotations

from pathlib import Path

import researchgym
from researchgym.agents.base import Action, Agent
from researchgym.runs.episode import run_episode
from researchgym.runs.trajectory import read_trajectory


class ReportingAgent:
    """Validates (saying why), then fails with the record of the turn that broke."""

    name = "reporting"

    def reset(self, task, observation, info):
        self.turn = 0
        return {"opening_messages": [{"role": "system", "content": "play " + task.id}]}

    def act(self, observation, info):
        self.turn += 1
        if self.turn == 1:
            return Action("validate", {"thought": "see where the starter stands", "model_stats": {"api_calls": 1}})
        if self.turn == 2:
            return "cat strategy.py"  # a bare command still works
        error = RuntimeError("the model went away")
        error.record = {"model_turns": [{"response": "partial"}], "model_stats": {"api_calls": 3}}
        raise error


class WrongTypeAgent:
    name = "wrong-type"

    def reset(self, task, observation, info):
        return None

    def act(self, observation, info):
        return 42


def steps_of(result):
    return [r for r in read_trajectory(Path(result.trajectory)) if r["type"] in ("step", "autosubmit")]


def test_an_agents_records_reach_the_trajectory_and_the_result(tmp_path):
    agent = ReportingAgent()
    assert isinstance(agent, Agent)
    result = run_episode(researchgym.make("battleOfSexes", trajectory_dir=tmp_path), agent, seed=0)
    assert result.exit_status == "autosubmission (agent_error)"
    assert result.error == "RuntimeError: the model went away"
    assert result.model_stats == {"api_calls": 3}  # the last stats reported, from the failed turn
    records = steps_of(result)
    validate, cat, autosubmit = records
    assert validate["action"] == "validate" and validate["thought"] == "see where the starter stands"
    assert validate["opening_messages"] == [{"role": "system", "content": "play battleOfSexes"}]
    assert "thought" not in cat and "opening_messages" not in cat
    assert autosubmit["type"] == "autosubmit" and autosubmit["model_turns"] == [{"response": "partial"}]


def test_an_act_that_returns_neither_a_command_nor_an_action_ends_the_episode(tmp_path):
    result = run_episode(researchgym.make("battleOfSexes", trajectory_dir=tmp_path), WrongTypeAgent(), seed=0)
    assert result.exit_status == "autosubmission (agent_error)"
    assert "act() must return a command (str) or an Action, not int" in result.error
    assert result.final_score is not None  # the starter was scored all the same
