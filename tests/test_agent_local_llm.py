"""A real episode with a real model and no network: the ReAct agent over local/smollm2."""

from __future__ import annotations

from pathlib import Path

import pytest

import researchgym
from researchgym.agents.config import load_agent_config
from researchgym.agents.react import ReactAgent
from researchgym.models import create_model
from researchgym.runs.episode import run_episode
from researchgym.runs.trajectory import read_trajectory

pytest.importorskip("torch", reason="the local-llm extra is not installed")
pytest.importorskip("transformers", reason="the local-llm extra is not installed")


@pytest.mark.slow
def test_react_episode_with_local_smollm2(tmp_path: Path):
    model = create_model("local/smollm2", max_output_tokens=48, temperature=0.0)
    config = load_agent_config(max_format_retries=3, model={"max_output_tokens": 48})
    env = researchgym.make("battleOfSexes", limits={"max_steps": 3}, trajectory_dir=tmp_path)
    result = run_episode(env, ReactAgent(model, config), seed=0)
    # A weak model: it may or may not keep the format, but the episode ends cleanly, auto-submitted.
    assert result.exit_status in {"autosubmission (max_steps)", "autosubmission (format_error)", "submitted"}
    assert result.final_score is not None
    records = list(read_trajectory(Path(result.trajectory)))
    turns = [turn for record in records for turn in record.get("model_turns", [])]
    assert len(turns) >= 2
    for turn in turns:
        assert turn["response"].strip()  # a real generation, not an empty stub
        assert turn["input_tokens"] > 500  # the system prompt with the command docs
        assert 0 < turn["output_tokens"] <= 48
        assert turn["cost"] == 0.0
    stats = result.model_stats
    assert stats["api_calls"] == len(turns)
    assert stats["tokens_received"] == sum(t["output_tokens"] for t in turns)
