"""MLGym's recorded actions behave here as they did there (issue #21): each case is an action
shape found in MLGym's published trajectories, run in a real bwrap sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import researchgym
from researchgym.agents.config import load_agent_config
from researchgym.agents.react import ReactAgent, parse_reply
from researchgym.models import create_model
from researchgym.models.scripted import ReplayModel, mlgym_replies
from researchgym.runs.episode import run_episode

WINDOW = 10


@pytest.fixture(scope="module")
def env():
    environment = researchgym.make(
        "battleOfSexes", window=WINDOW, footer=False, limits={"max_steps": 1000, "command_timeout_s": 20}
    )
    environment.reset(seed=0)
    yield environment
    environment.close()


def step(env, action: str) -> tuple[str, int | None]:
    observation, _, _, _, info = env.step(action)
    return observation, info["exit_code"]


def write(env, name: str, content: str) -> Path:
    path = env.workspace / name
    path.write_text(content)
    return path


def numbered(n: int) -> str:
    return "".join(f"line {i}\n" for i in range(1, n + 1))


# ------------------------------------------------------------ create, clamping
def test_create_then_edit_line_one(env):
    (env.workspace / "fresh.py").unlink(missing_ok=True)
    out, code = step(env, "create fresh.py")
    assert code == 0 and "(1 lines total)" in out
    assert (env.workspace / "fresh.py").read_text() == "\n"
    out, code = step(env, "edit 1:1\nimport math\nprint(math.pi)\nend_of_edit")
    assert code == 0 and "File updated" in out
    assert (env.workspace / "fresh.py").read_text() == "import math\nprint(math.pi)\n"


def test_create_of_an_existing_file_is_refused_but_opens_it(env):
    path = write(env, "exists.txt", numbered(3))
    write(env, "other.txt", numbered(5))
    step(env, "open other.txt")
    out, code = step(env, "create exists.txt")
    assert code == 1 and "already exists" in out and "3:line 3" in out
    out, code = step(env, "edit 2:2\nTWO\nend_of_edit")  # MLGym's agents rely on this
    assert code == 0 and path.read_text() == "line 1\nTWO\nline 3\n"


def test_edit_past_the_end_replaces_through_the_end(env):
    path = write(env, "f.txt", numbered(5))
    step(env, "open f.txt")
    out, code = step(env, "edit 4:40\nfour\nend_of_edit")
    assert code == 0 and "replaced lines 4 to 5" in out
    assert path.read_text() == "line 1\nline 2\nline 3\nfour\n"
    out, code = step(env, "edit 9:12\nappended\nend_of_edit")  # START past the end appends
    assert code == 0 and path.read_text() == "line 1\nline 2\nline 3\nfour\nappended\n"


def test_edit_of_an_empty_file_fills_it(env):
    path = write(env, "empty.txt", "")
    step(env, "open empty.txt")
    out, code = step(env, "edit 1:1\nhello\nend_of_edit")
    assert code == 0 and path.read_text() == "hello\n"


def test_open_and_insert_clamp_out_of_range_lines(env):
    path = write(env, "f.txt", numbered(30))
    out, code = step(env, "open f.txt 0")
    assert code == 0 and " 1:line 1" in out and "showing line 1 instead" in out
    out, code = step(env, "open f.txt 500")
    assert code == 0 and "30:line 30" in out and "showing line 30 instead" in out
    out, code = step(env, "insert 99\nlast\nend_of_insert")
    assert code == 0 and path.read_text() == numbered(30) + "last\n"
    out, code = step(env, "goto 0")
    assert code == 0 and " 1:line 1" in out
    out, code = step(env, "goto 99")  # MLGym refuses a goto past the end
    assert code == 1


# ------------------------------------------------------------ block commands
def test_extra_words_after_the_range_are_ignored_and_reported(env):
    path = write(env, "strat.py", "def f():\n    return 1\n")
    step(env, "open strat.py")
    out, code = step(env, "edit 2:2 strat.py\n    return 2\nend_of_edit")
    assert code == 0 and "ignored the extra words 'strat.py'" in out
    assert path.read_text() == "def f():\n    return 2\n"


def test_a_malformed_first_line_never_runs_the_body_as_shell(env):
    path = write(env, "strat.py", "def f():\n    return 1\n")
    step(env, "open strat.py")
    for first in ('edit "strat.py" 1:2', "edit 1 : 2", "edit x:2", "insert end", "edit 1:2; touch ran_first.txt"):
        end = "end_of_insert" if first.startswith("insert") else "end_of_edit"
        out, code = step(env, f"{first}\ntouch ran.txt\nrm strat.py\n{end}")
        assert code == 1 and "Usage" in out, (first, out)
        assert not (env.workspace / "ran.txt").exists(), first
        assert not (env.workspace / "ran_first.txt").exists(), first
        assert path.exists(), first
    assert path.read_text() == "def f():\n    return 1\n"


def test_a_terminator_with_trailing_spaces_or_cr_ends_the_block(env):
    path = write(env, "f.txt", numbered(3))
    step(env, "open f.txt")
    for ending in ("end_of_edit   ", "end_of_edit\r", "end_of_edit \t"):
        (env.workspace / "after.txt").unlink(missing_ok=True)
        out, code = step(env, f"edit 2:2\nTWO\n{ending}\ntouch after.txt")
        assert path.read_text() == "line 1\nTWO\nline 3\n", repr(ending)
        assert (env.workspace / "after.txt").exists(), repr(ending)
        path.write_text(numbered(3))


def test_a_heredoc_written_by_the_agent_on_the_first_line_is_accepted(env):
    path = write(env, "f.txt", numbered(3))
    step(env, "open f.txt")
    out, code = step(env, "edit 1:1 << 'end_of_edit'\nONE\nend_of_edit")
    assert code == 0 and "extra words" not in out and path.read_text() == "ONE\nline 2\nline 3\n"


# ------------------------------------------------------------ the lint gate
def test_lint_refuses_new_indentation_and_undefined_names_only(env):
    path = write(env, "m.py", "import os\n\n\ndef f():\n    return os.sep\n")
    before = path.read_bytes()
    step(env, "open m.py")
    out, code = step(env, "edit 5:5\n      return os.sep\nend_of_edit")  # six spaces: E111
    assert code == 1 and "E111" in out and path.read_bytes() == before
    out, code = step(env, "edit 5:5\n    return sep\nend_of_edit")
    assert code == 1 and "F821 undefined name 'sep'" in out and path.read_bytes() == before
    # Not in MLGym's set: an unused variable, and an unused import, pass.
    out, code = step(env, "edit 5:5\n    unused = 1\n    return os.sep\nend_of_edit")
    assert code == 0 and "File updated" in out
    out, code = step(env, "insert 1\nimport sys\nend_of_insert")
    assert code == 0


def test_old_errors_outside_the_window_are_mapped_past_the_edit(env):
    path = write(env, "old.py", "x = 1\ny = 2\nprint(undefined_a)\nprint(undefined_b)\n")
    step(env, "open old.py")
    # Three lines for one: the old errors move down by two and still count as old.
    out, code = step(env, "edit 1:1\nx = 1\nz = 3\nw = 4\nend_of_edit")
    assert code == 0, out
    out, code = step(env, "insert 0\nimport math\nend_of_insert")
    assert code == 0, out
    assert path.read_text().startswith("import math\nx = 1\nz = 3\nw = 4\ny = 2\nprint(undefined_a)")


def test_an_old_error_inside_the_replaced_lines_counts_as_new(env):
    write(env, "old.py", "x = 1\nprint(undefined_a)\n")
    step(env, "open old.py")
    out, code = step(env, "edit 2:2\nprint(undefined_a, x)\nend_of_edit")
    assert code == 1 and "undefined_a" in out  # MLGym's rule: errors in the edited lines are the edit's


def test_the_rule_set_is_configurable(env):
    path = write(env, "cfg.py", "def f():\n    return 1\n")
    step(env, "open cfg.py")
    try:
        step(env, "export RESEARCHGYM_LINT=F401,E999")
        out, code = step(env, "insert 0\nimport json\nend_of_insert")
        assert code == 1 and "F401" in out
        out, code = step(env, "edit 2:2\n  return nowhere\nend_of_edit")  # neither E111 nor F821 now
        assert code == 0, out
        step(env, "export RESEARCHGYM_LINT=off")
        out, code = step(env, "edit 2:2\n  return (\nend_of_edit")
        assert code == 0 and path.read_text() == "def f():\n  return (\n"
    finally:
        step(env, "unset RESEARCHGYM_LINT")
    assert load_agent_config().tool_env() == {"RESEARCHGYM_LINT": "F821,F822,F831,E111,E112,E113,E999,E902"}
    assert load_agent_config(lint_select=[]).tool_env() == {"RESEARCHGYM_LINT": "off"}


# ------------------------------------------------------------ final newline
def test_an_edit_ending_in_an_empty_line_keeps_it_without_a_final_newline(env):
    path = write(env, "nonl.txt", "a\nb")  # no final newline
    step(env, "open nonl.txt")
    out, code = step(env, "edit 2:2\nb\n\nend_of_edit")
    assert code == 0 and "(3 lines total)" in out
    assert path.read_text() == "a\nb\n\n"
    out, _ = step(env, "open nonl.txt")
    assert "(3 lines total)" in out


# ------------------------------------------------------------ replaying .traj files
def _traj(steps: list[dict]) -> dict:
    return {
        "environment": "mlgym_main",
        "trajectory": steps,
        "history": [],
        "info": {"exit_status": "submitted", "model_stats": {}, "score": []},
    }


STEPS = [
    {
        "thought": "DISCUSSION\nLook at the strategy.",
        "action": 'open "strategy.py"\n',
        "response": 'DISCUSSION\nLook at the strategy.\n\n```\nopen "strategy.py"\n```',
        "observation": "...",
        "state": "{}",
        "execution_time": 0.1,
    },
    # A reply MLGym parsed leniently (two blocks): rebuilt from the thought and the action.
    {
        "thought": "Always play 0.",
        "action": "edit 1:1000 strategy.py\ndef row_strategy(history):\n    return 0\nend_of_edit\n",
        "response": "Always play 0.\n```python\nprint('sketch')\n```\n```\nedit 1:1000\n...\n```",
        "observation": "...",
        "state": "{}",
        "execution_time": 0.1,
    },
    {
        "thought": "",
        "action": "validate",
        "response": "```\nvalidate\n```",
        "observation": "...",
        "state": "{}",
        "execution_time": 1.0,
    },
    {"thought": "", "action": "exit_context", "response": "", "observation": "", "state": "{}", "execution_time": 0},
]


def test_mlgym_trajectories_become_react_replies(tmp_path):
    replies = mlgym_replies(json.dumps(_traj(STEPS)))
    assert replies is not None and len(replies) == 3  # stops at the harness's exit_context
    assert replies[0] == STEPS[0]["response"]
    assert [parse_reply(r)[1].strip() for r in replies] == [s["action"].strip() for s in STEPS[:3]]
    assert mlgym_replies('{"type": "reset"}\n{"type": "step"}') is None  # our own .jsonl
    assert mlgym_replies(json.dumps({"trajectory": "no"})) is None


def test_replay_model_runs_an_mlgym_traj_file(tmp_path):
    path = tmp_path / "battleOfSexes.traj"
    path.write_text(json.dumps(_traj(STEPS + [{"thought": "", "action": "submit", "response": "```\nsubmit\n```"}])))
    model = create_model(f"replay:{path}")
    assert isinstance(model, ReplayModel) and len(model.replies) == 3
    environment = researchgym.make("battleOfSexes", trajectory_dir=tmp_path)
    result = run_episode(environment, ReactAgent(model), seed=0)
    environment.close()
    assert environment.steps >= 3
    records = [json.loads(line) for line in environment.trajectory_path.read_text().splitlines()]
    actions = [r.get("action") for r in records if r.get("type") == "step"]
    assert actions[:3] == [s["action"].strip() for s in STEPS[:3]]
    validated = [r for r in records if r.get("type") == "step" and r.get("action") == "validate"]
    assert validated and "ignored the extra words" in json.dumps(records[2])
    # The edit applied (always play 0, the row player's favourite): far above the baseline's ~1.0.
    assert result.scores[0]["kind"] == "validate" and result.scores[0]["validation"]["value"] > 1.3, result.scores


def test_the_agent_configs_rule_set_reaches_the_sandbox(tmp_path):
    """lint_select in the agent's configuration decides what the edit lint refuses."""
    from researchgym.models.scripted import ScriptedModel

    edit = "```\ncreate lax.py\n```", "```\nedit 1:1\nprint(undefined_name)\nend_of_edit\n```", "```\nsubmit\n```"
    outcomes = {}
    for select in (None, []):
        overrides = {} if select is None else {"lint_select": select}
        agent = ReactAgent(ScriptedModel(list(edit)), load_agent_config(**overrides))
        env = researchgym.make("battleOfSexes", workspace_dir=tmp_path / str(select))
        try:
            run_episode(env, agent, seed=0)
            (created,) = (tmp_path / str(select)).rglob("lax.py")
            outcomes[str(select)] = created.read_text()
        finally:
            env.close()
    assert outcomes == {"None": "\n", "[]": "print(undefined_name)\n"}  # F821 refused by default only
