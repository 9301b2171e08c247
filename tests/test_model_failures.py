"""A model that never works ends its episode at once, as `model_unavailable`, with one line that
says what to fix: refused or missing credentials and unknown model names are not retried, and a
server nobody answers at is named once its retries are spent. Real litellm, a real HTTP server."""

from __future__ import annotations

import pytest
from openai_server import ChatServer, Fault

from researchgym.agents.react import ReactAgent
from researchgym.models import ModelAPIError, ModelUnavailable, create_model
from researchgym.runs.episode import EpisodeResult, run_episode
from researchgym.wrappers import make_env

CHAT = [{"role": "user", "content": "Say hello."}]


def reply(command: str) -> str:
    return f"DISCUSSION\nnext\n\n```\n{command}\n```\n"


@pytest.fixture
def server():
    chat = ChatServer().start()
    yield chat
    chat.stop()


@pytest.fixture
def no_openai_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)


@pytest.fixture
def completions(monkeypatch) -> list[str]:
    """The models litellm.completion was called for (the real function still answers)."""
    import litellm

    calls: list[str] = []
    real = litellm.completion

    def counted(*args, **kwargs):
        calls.append(kwargs.get("model", ""))
        return real(*args, **kwargs)

    monkeypatch.setattr(litellm, "completion", counted)
    return calls


def model_for(name: str, api_base: str | None = None, **settings):
    options = {"max_attempts": 5, "backoff_s": 0.01, "max_backoff_s": 0.05, "timeout_s": 5.0, **settings}
    return create_model(name, api_base=api_base, **options)


def play(tiny_task, tmp_path, model) -> EpisodeResult:
    env = make_env(str(tiny_task / "task.yaml"), trajectory_dir=tmp_path / "trajectories")
    return run_episode(env, ReactAgent(model), seed=0)


def assert_never_answered(result: EpisodeResult) -> None:
    assert result.exit_status.startswith("autosubmission (model_unavailable)"), result
    assert result.error is not None and "\n" not in result.error, result.error
    assert result.model_stats.get("api_calls", 0) == 0, result.model_stats
    assert result.steps == 0


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_end_the_episode_at_once_naming_the_variable(
    tiny_task, tmp_path, server, no_openai_key, status
):
    server.faults = [Fault(status, message="invalid api key")]
    server.replies = [reply("submit")]  # what a retry would get
    result = play(tiny_task, tmp_path, model_for("openai/test-model", server.api_base))
    assert len(server.requests) == 1  # not retried, though 5 attempts were allowed
    assert_never_answered(result)
    assert "set OPENAI_API_KEY" in result.error and server.api_base in result.error, result.error
    assert f"{status}" in result.error


def test_a_refused_key_from_the_environment_is_sent_and_named(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    server.faults = [Fault(401, message="invalid api key")]
    with pytest.raises(ModelUnavailable, match="OPENAI_API_KEY is set but was refused") as info:
        model_for("openai/test-model", server.api_base).query(CHAT)
    assert len(server.requests) == 1 and info.value.status == "model_unavailable"


def test_a_key_given_to_the_model_is_the_one_blamed(server):
    server.faults = [Fault(401, message="invalid api key")]
    with pytest.raises(ModelUnavailable, match="check the api_key given"):
        model_for("openai/test-model", server.api_base, api_key="sk-given").query(CHAT)
    assert len(server.requests) == 1


def test_a_missing_provider_key_is_not_retried(no_openai_key, completions):
    # litellm reports a missing OpenAI key as a 500, which would otherwise be retried.
    with pytest.raises(ModelUnavailable, match="no API key.*set OPENAI_API_KEY and run again") as info:
        model_for("openai/gpt-4o").query(CHAT)
    assert completions == ["openai/gpt-4o"] and "\n" not in str(info.value)


def test_a_name_litellm_cannot_place_is_an_unknown_model_naming_it(completions):
    with pytest.raises(ModelUnavailable, match=r"unknown model 'no-such-model-xyz' \(--model\)") as info:
        model_for("no-such-model-xyz").query(CHAT)
    assert completions == ["no-such-model-xyz"] and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "fault",
    [
        Fault(404, message="The model `test-model` does not exist."),
        Fault(400, message="model 'test-model' not found, try pulling it first"),
    ],
)
def test_a_model_the_server_does_not_serve_ends_the_episode_at_once(tiny_task, tmp_path, server, fault):
    server.faults = [fault]
    server.replies = [reply("submit")]
    result = play(tiny_task, tmp_path, model_for("openai/test-model", server.api_base))
    assert len(server.requests) == 1
    assert_never_answered(result)
    assert "model 'openai/test-model' was not found" in result.error and "--model" in result.error


def test_other_bad_requests_stay_api_errors_and_are_not_retried(server):
    server.faults = [Fault(400, message="temperature must be at most 2")]
    with pytest.raises(ModelAPIError) as info:
        model_for("openai/test-model", server.api_base).query(CHAT)
    assert type(info.value) is ModelAPIError and info.value.status == "api_error"
    assert len(server.requests) == 1


def test_a_server_never_reached_is_retried_then_named(tiny_task, tmp_path, completions):
    gone = ChatServer().start()
    api_base = gone.api_base
    gone.stop()  # its port now refuses connections
    result = play(tiny_task, tmp_path, model_for("openai/test-model", api_base, max_attempts=3))
    assert completions == ["openai/test-model"] * 3  # retried as any outage
    assert_never_answered(result)
    assert f"could not connect to {api_base} (--api-base) in 3 attempts" in result.error, result.error


def test_a_server_lost_after_it_answered_is_an_api_error_naming_it(tiny_task, tmp_path, server):
    server.replies = [reply("python solve.py")]
    model = model_for("openai/test-model", server.api_base, max_attempts=2)
    env = make_env(str(tiny_task / "task.yaml"), trajectory_dir=tmp_path / "trajectories")
    result = run_episode(env, ReactAgent(model), seed=0, on_step=lambda _event: server.stop())
    assert result.exit_status == "autosubmission (api_error)", result
    assert result.model_stats["api_calls"] == 1 and result.final_score == 1.0
    assert f"could not connect to {server.api_base} (--api-base) in 2 attempts" in result.error, result.error
