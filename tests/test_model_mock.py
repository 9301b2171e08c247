"""`--model mock`: real episodes in a real sandbox, played by a free, deterministic script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import researchgym
from researchgym.agents.react import ReactAgent
from researchgym.errors import ResearchGymError
from researchgym.models import MODELS, Model, ModelUnavailable, create_model
from researchgym.models.mock import DEFAULT_SCRIPT, FINAL_REPLY, MockModel
from researchgym.runs.episode import run_episode
from researchgym.runs.trajectory import read_trajectory

ALWAYS_ZERO = "cat > strategy.py <<'PYEOF'\ndef row_strategy(history):\n    return 0\nPYEOF"
CHAT = [{"role": "system", "content": "You work in a shell."}, {"role": "user", "content": "Solve the task."}]


def reply(command: str, thought: str = "Next step.") -> str:
    return f"DISCUSSION\n{thought}\n\n```\n{command}\n```\n"


def actions(trajectory: str | None) -> list[str]:
    assert trajectory is not None
    return [r["action"] for r in read_trajectory(Path(trajectory)) if r["type"] == "step"]


def test_the_default_script_plays_any_task_to_a_scored_submission(tmp_path):
    model = create_model("mock", temperature=0.0, max_output_tokens=256, top_p=0.95, api_base=None)
    assert isinstance(model, MockModel) and isinstance(model, Model) and "mock" in MODELS.names()
    assert model.max_output_tokens == 256
    env = researchgym.make("battleOfSexes", trajectory_dir=tmp_path)
    result = run_episode(env, ReactAgent(model), seed=0)
    assert result.exit_status == "submitted", result
    assert result.final_score is not None and result.final_score > 0
    assert actions(result.trajectory) == ["ls", "validate", "submit"]
    stats = result.model_stats
    assert stats["api_calls"] == 3 and stats["total_cost"] == 0.0 and stats["cost_known"] is True
    assert stats["tokens_sent"] > 100 and stats["tokens_received"] > 0


def test_a_replies_file_is_played_in_order_then_submitted(tmp_path):
    replies = tmp_path / "replies.yaml"
    broken = "I forgot the code block this time."
    script = [reply("cat strategy.py"), broken, reply(ALWAYS_ZERO), reply("validate")]
    replies.write_text(yaml.safe_dump({"replies": script}))
    model = create_model(f"mock:{replies}")
    assert model.name == f"mock:{replies}"
    env = researchgym.make("battleOfSexes", trajectory_dir=tmp_path / "trajectories")
    result = run_episode(env, ReactAgent(model), seed=0)
    # The reply without a block was refused and asked again; after the file, the mock submits.
    assert result.exit_status == "submitted", result
    assert result.final_score == pytest.approx(1.44, abs=0.01)
    assert actions(result.trajectory) == ["cat strategy.py", ALWAYS_ZERO, "validate", "submit"]
    steps = [r for r in read_trajectory(Path(result.trajectory)) if r["type"] == "step"]
    assert [t["response"] for t in steps[1]["model_turns"]] == [broken, reply(ALWAYS_ZERO)]
    assert result.model_stats["api_calls"] == 5


def test_same_conversation_same_answer_and_a_new_conversation_starts_over():
    first, second = MockModel(), MockModel()
    a, b = first.query(CHAT), second.query(CHAT)
    assert (a.text, a.input_tokens, a.output_tokens, a.cost) == (b.text, b.input_tokens, b.output_tokens, 0.0)
    assert a.text == DEFAULT_SCRIPT[0] and first.estimate_input_cost(CHAT) == 0.0
    conversation = [*CHAT, {"role": "assistant", "content": a.text}, {"role": "user", "content": "out"}]
    assert [first.query(conversation).text for _ in range(3)] == [DEFAULT_SCRIPT[1], DEFAULT_SCRIPT[2], FINAL_REPLY]
    assert first.query(CHAT).text == DEFAULT_SCRIPT[0]  # the next episode


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("replies.json", json.dumps(["one", "two"])),
        ("replies.yml", "- one\n- two\n"),
        ("replies.txt", "one\n---\ntwo\n"),
    ],
)
def test_every_file_format_gives_the_same_replies(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    model = create_model(f"mock:{path}")
    assert [model.query(CHAT).text.strip()] == ["one"]
    assert model.query([*CHAT, {"role": "assistant", "content": "one"}]).text.strip() == "two"


def test_a_text_file_keeps_multi_line_replies_whole(tmp_path):
    path = tmp_path / "replies.txt"
    path.write_text(f"{reply('ls')}---\n{reply(ALWAYS_ZERO)}")
    model = MockModel(path)
    assert model.replies == [reply("ls"), reply(ALWAYS_ZERO)]


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.yaml", None, "cannot read"),
        ("empty.txt", "", "no replies"),
        ("blank.txt", "\n---\n  \n", "no replies"),
        ("empty.json", "[]", "no replies"),
        ("empty.yaml", "", "no replies"),
        ("numbers.json", "[1, 2]", "reply 1 is int, not text"),
        ("object.json", '{"reply": "ls"}', "expected a list"),
        ("broken.json", "[", "not valid JSON"),
    ],
)
def test_a_bad_replies_file_is_refused_naming_it(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ModelUnavailable) as info:
        create_model(f"mock:{path}")
    assert isinstance(info.value, ResearchGymError) and info.value.status == "model_unavailable"
    assert str(path) in str(info.value) and problem in str(info.value)
