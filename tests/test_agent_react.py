"""The ReAct agent over the real litellm client, against a real local OpenAI-style server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_server import ChatServer, Fault

import researchgym
from researchgym.agents.budget import Budget
from researchgym.agents.config import load_agent_config
from researchgym.agents.react import ReactAgent, parse_reply
from researchgym.errors import FormatError
from researchgym.eval_secrets import new_secret
from researchgym.models import create_model
from researchgym.runs.episode import run_episode
from researchgym.runs.trajectory import read_trajectory


def reply(command: str, thought: str = "I will do the next step.") -> str:
    return f"DISCUSSION\n{thought}\n\n```\n{command}\n```\n"


FIX_STRATEGY = [
    reply("cat strategy.py", "Let me read the starter strategy."),
    reply("open strategy.py"),
    reply(
        "edit 10:25\ndef row_strategy(history):\n    return 0\nend_of_edit",
        "The column player follows our first move, so always playing 0 is best.",
    ),
    reply("validate"),
    reply("submit"),
]


@pytest.fixture
def server():
    chat = ChatServer().start()
    yield chat
    chat.stop()


def make_agent(server: ChatServer, model: str = "openai/test-model", **config) -> ReactAgent:
    cfg = load_agent_config(**config)
    llm = create_model(
        model,
        api_base=server.api_base,
        temperature=0.0,
        max_output_tokens=256,
        timeout_s=1.0,
        backoff_s=0.05,
        max_attempts=4,
        seed=0,
    )
    return ReactAgent(llm, cfg)


def test_parse_reply_needs_exactly_one_block():
    assert parse_reply("think\n```bash\nls -la\n```") == ("think", "ls -la")
    assert parse_reply("x\n```\nedit 1:1\nfoo\nend_of_edit\n```\n")[1] == "edit 1:1\nfoo\nend_of_edit"
    for bad in ("no block at all", "```\nls\n```\n```\npwd\n```", "```\n\n```"):
        with pytest.raises(FormatError):
            parse_reply(bad)


def test_full_episode_through_litellm_with_retries(server, tmp_path):
    server.replies = list(FIX_STRATEGY)
    server.faults = [Fault(429, retry_after=0.1, message="slow down"), Fault(500), Fault(200, delay_s=2.0)]
    env = researchgym.make("battleOfSexes", trajectory_dir=tmp_path)
    result = run_episode(env, make_agent(server), seed=3)
    assert result.exit_status == "submitted"
    assert result.final_score == pytest.approx(1.44, abs=0.01)
    assert result.final_score > researchgym.load_task("battleOfSexes").baseline_score
    # Every request reached the server: 3 injected failures + 5 answered calls.
    assert len(server.requests) == 8
    assert server.requests[0]["temperature"] == 0.0 and server.requests[0]["max_tokens"] == 256
    steps = [r for r in read_trajectory(Path(result.trajectory)) if r["type"] == "step"]
    assert [s["action"].split("\n")[0] for s in steps] == [
        "cat strategy.py",
        "open strategy.py",
        "edit 10:25",
        "validate",
        "submit",
    ]
    first = steps[0]["model_turns"][0]
    assert first["response"] == FIX_STRATEGY[0] and first["retries"] == 3
    assert first["input_tokens"] > 100 and first["output_tokens"] == len(FIX_STRATEGY[0].split())
    assert first["cost"] is None  # a model litellm has no price for
    assert steps[0]["thought"] == "DISCUSSION\nLet me read the starter strategy."
    stats = result.model_stats
    assert stats["api_calls"] == 5 and stats["cost_known"] is False
    assert stats["tokens_received"] == sum(len(r.split()) for r in FIX_STRATEGY)
    # The system prompt carries the generated command documentation.
    system = server.requests[-1]["messages"][0]["content"]
    assert "edit <start_line>:<end_line>" in system and "search_dir <search_term> [<dir>]" in system


def test_api_errors_that_outlast_the_retries_end_the_episode(server):
    server.faults = [Fault(503) for _ in range(4)]
    env = researchgym.make("battleOfSexes")
    result = run_episode(env, make_agent(server), seed=0)
    assert result.exit_status == "autosubmission (api_error)"
    assert result.final_score is not None  # the starter strategy was auto-submitted
    assert "4 attempts" in result.error


def test_context_overflow_ends_with_context_exceeded(server):
    server.faults = [
        Fault(
            400,
            message="This model's maximum context length is 8192 tokens. "
            "However, your messages resulted in 9000 tokens.",
        )
    ]
    env = researchgym.make("battleOfSexes")
    result = run_episode(env, make_agent(server), seed=0)
    assert result.exit_status == "autosubmission (context_exceeded)"
    assert len(server.requests) == 1  # not retried


def test_malformed_replies_end_with_format_error_after_the_retries(server, tmp_path):
    server.replies = ["I think I should list files but forgot the block.", "still no block"]
    env = researchgym.make("battleOfSexes", trajectory_dir=tmp_path)
    result = run_episode(env, make_agent(server, max_format_retries=1), seed=0)
    assert result.exit_status == "autosubmission (format_error)"
    assert len(server.requests) == 2
    # The retry showed the model its malformed reply and what was wrong with it.
    retry = server.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "I think I should list files but forgot the block."}
    assert "no command found" in retry[-1]["content"]
    records = list(read_trajectory(Path(result.trajectory)))
    turns = [t for r in records for t in r.get("model_turns", [])]
    assert len(turns) == 2 and all("format_error" in t for t in turns)


def test_a_malformed_reply_followed_by_a_good_one_recovers(server):
    server.replies = ["no block here", reply("submit")]
    env = researchgym.make("battleOfSexes")
    result = run_episode(env, make_agent(server), seed=0)
    assert result.exit_status == "submitted"


def test_cost_limit_with_a_priced_model_stops_before_exceeding_it(server):
    server.replies = [reply("ls") for _ in range(50)]
    env = researchgym.make("battleOfSexes", limits={"max_steps": 50})
    agent = make_agent(server, model="openai/gpt-4o", limits={"cost_usd": 0.01})
    result = run_episode(env, agent, seed=0)
    assert result.exit_status == "autosubmission (cost_limit)"
    stats = result.model_stats
    assert stats["cost_known"] and 0 < stats["total_cost"] <= 0.01
    assert stats["api_calls"] == len(server.requests) >= 2


def test_step_limit_truncates_with_auto_submission(server):
    server.replies = [reply("ls"), reply("pwd"), reply("ls")]
    env = researchgym.make("battleOfSexes", limits={"max_steps": 2})
    result = run_episode(env, make_agent(server), seed=0)
    assert result.exit_status == "autosubmission (max_steps)" and result.steps == 2
    assert result.final_score is not None and len(server.requests) == 2


def test_token_and_run_budgets(server):
    server.replies = [reply("ls") for _ in range(20)]
    env = researchgym.make("battleOfSexes")
    result = run_episode(env, make_agent(server, limits={"cost_usd": None, "tokens": 3000}), seed=0)
    assert result.exit_status == "autosubmission (token_limit)"
    # A budget shared by the episodes of a run stops the second episode.
    shared = Budget(cost_limit=0.004, scope="run_")
    server.replies = [reply("ls") for _ in range(20)]
    first = make_agent(server, model="openai/gpt-4o")
    first.run_budget = shared
    run_episode(researchgym.make("battleOfSexes", limits={"max_steps": 3}), first, seed=0)
    second = make_agent(server, model="openai/gpt-4o")
    second.run_budget = shared
    result = run_episode(researchgym.make("battleOfSexes", limits={"max_steps": 3}), second, seed=1)
    assert result.exit_status == "autosubmission (run_cost_limit)"


def test_history_keeps_task_replies_and_last_observations(server):
    server.replies = [reply(f"echo observation-{i}") for i in range(8)] + [reply("submit")]
    env = researchgym.make("battleOfSexes")
    run_episode(env, make_agent(server, history={"keep_last_observations": 3}), seed=0)
    messages = server.requests[-1]["messages"]
    assert messages[0]["role"] == "system" and "Battle of the Sexes" in messages[1]["content"]
    assert sum(m["role"] == "assistant" for m in messages) == 8
    observations = [m["content"] for m in messages[2:] if m["role"] == "user"]
    assert len(observations) == 8
    assert all(o.startswith("Old environment output: (") for o in observations[:5])
    assert "observation-7" in observations[-1] and "observation-5" in observations[-3]


def test_prompts_come_from_a_yaml_file_the_user_can_override(server, tmp_path):
    override = tmp_path / "agent.yaml"
    override.write_text('templates:\n  system: "You are a careful researcher. Commands:\\n{{ command_docs }}"\n')
    config = load_agent_config(override)
    assert config.templates.system.startswith("You are a careful researcher")
    assert config.templates.instance == load_agent_config().templates.instance  # untouched
    server.replies = [reply("submit")]
    llm = create_model("openai/test-model", api_base=server.api_base, max_attempts=1)
    run_episode(researchgym.make("battleOfSexes"), ReactAgent(llm, config), seed=0)
    assert server.requests[0]["messages"][0]["content"].startswith(
        "You are a careful researcher. Commands:\nopen <path>"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_format_retries: -1\n")
    with pytest.raises(Exception) as info:
        load_agent_config(bad)
    assert "bad.yaml" in str(info.value) and "max_format_retries" in str(info.value)


def test_replay_model_plays_back_a_trajectory(server, tmp_path):
    server.replies = list(FIX_STRATEGY)
    secret = new_secret()  # the same hidden test games in both episodes (as --eval-seed-file gives a run)
    first = run_episode(
        researchgym.make("battleOfSexes", trajectory_dir=tmp_path / "a", eval_secret=secret), make_agent(server), seed=3
    )
    replayed = ReactAgent(create_model(f"replay:{first.trajectory}"))
    second = run_episode(
        researchgym.make("battleOfSexes", trajectory_dir=tmp_path / "b", eval_secret=secret), replayed, seed=3
    )
    assert second.exit_status == "submitted" and second.final_score == first.final_score


def test_cli_runs_a_model_through_an_openai_compatible_server(server, tmp_path):
    from typer.testing import CliRunner

    from researchgym.cli import app

    server.replies = list(FIX_STRATEGY)
    result = CliRunner().invoke(
        app,
        [
            "run",
            "battleOfSexes",
            "--model",
            "openai/test-model",
            "--api-base",
            server.api_base,
            "--out",
            str(tmp_path),
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "agent react on openai/test-model" in result.output and "exit status: submitted" in result.output
    assert "model: 5 calls" in result.output and "some calls unpriced" in result.output
    records = [json.loads(line) for line in next(tmp_path.rglob("*.jsonl")).read_text().splitlines()]
    assert records[-1]["type"] == "end"


def test_retry_after_is_honoured(server):
    import time

    server.faults = [Fault(429, retry_after=0.6, message="slow down")]
    server.replies = ["ok"]
    llm = create_model("openai/test-model", api_base=server.api_base, backoff_s=0.01, max_attempts=2)
    started = time.monotonic()
    response = llm.query([{"role": "user", "content": "hi"}])
    assert response.text == "ok" and response.retries == 1
    assert time.monotonic() - started >= 0.6


def test_human_model_reads_replies_from_the_terminal(tmp_path):
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "researchgym"
    typed = "I will submit the starter strategy.\n```\nsubmit\n```\n.\n"
    completed = subprocess.run(
        [str(exe), "run", "battleOfSexes", "--model", "human", "--out", str(tmp_path), "--seed", "0"],
        input=typed,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert "exit status: submitted" in completed.stdout
    assert "your reply" in completed.stderr and "Battle of the Sexes" in completed.stderr


def test_default_config_allows_two_retries_then_format_error(server):
    server.replies = ["no block", "still none", "nope", reply("submit")]
    env = researchgym.make("battleOfSexes")
    result = run_episode(env, make_agent(server), seed=0)
    assert result.exit_status == "autosubmission (format_error)"
    assert len(server.requests) == 3  # the reply with a block was never asked for


@pytest.mark.parametrize("several", [False, True])
def test_temperature_and_agent_config_reach_every_episode(server, tmp_path, several):
    """One factory builds every agent: a single episode and each episode of a run of several get
    --temperature and the agent config file's model settings (runs of several used to drop both)."""
    from typer.testing import CliRunner

    from researchgym.cli import app

    config = tmp_path / "agent.yaml"
    config.write_text("model:\n  max_output_tokens: 321\n  top_p: 0.5\n")
    episodes = 2 if several else 1
    server.replies = list(FIX_STRATEGY) * episodes
    where = ["--seeds", "2", "--max-episodes", "1"] if several else ["--seed", "3"]
    result = CliRunner().invoke(
        app,
        [
            "run",
            "battleOfSexes",
            "--model",
            "openai/test-model",
            "--api-base",
            server.api_base,
            "--out",
            str(tmp_path / "out"),
            "--temperature",
            "0.7",
            "--agent-config",
            str(config),
            *where,
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(server.requests) == len(FIX_STRATEGY) * episodes
    for request in server.requests:
        assert request["temperature"] == 0.7 and request["top_p"] == 0.5, request
        assert 321 in (request.get("max_tokens"), request.get("max_completion_tokens")), request
    if several:
        from researchgym.runs.runner import RunConfig

        run_json = next((tmp_path / "out").glob("run-*/run.json"))
        saved = RunConfig.from_json(run_json.read_text())  # a resumed run builds its agents the same way
        assert saved.temperature == 0.7 and saved.agent_config == str(config.resolve())


def test_a_broken_agent_config_stops_a_run_before_it_starts(server, tmp_path):
    from typer.testing import CliRunner

    from researchgym.cli import app

    config = tmp_path / "agent.yaml"
    config.write_text("model:\n  temprature: 0.3\n")
    result = CliRunner().invoke(
        app,
        [
            "run",
            "battleOfSexes",
            "--model",
            "openai/test-model",
            "--api-base",
            server.api_base,
            "--out",
            str(tmp_path / "out"),
            "--seeds",
            "2",
            "--agent-config",
            str(config),
        ],
    )
    assert result.exit_code == 2 and "temprature" in result.output and "agent.yaml" in result.output
    assert not server.requests and not list((tmp_path / "out").glob("run-*"))
