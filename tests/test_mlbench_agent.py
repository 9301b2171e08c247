"""ML-Agent in the agent setting: README ranking, reading, the argument parser when the README is
not enough, run.sh judged on a fresh copy and stored; models behind a real OpenAI-style server."""

from __future__ import annotations

import pytest
from mlbench_toy import make_toy_repo
from openai_server import ChatServer

from researchgym.mlbench.agent import MLAgent, run_agent_episode, run_agent_setting
from researchgym.mlbench.llm import Repositories
from researchgym.mlbench.repos import RepoPin
from researchgym.mlbench.schema import Sample
from researchgym.models import create_model
from researchgym.runs.store import Store

# The toy repository is materialised in a cache of this module, not the user's.
pytestmark = pytest.mark.usefixtures("private_researchgym_cache")

SAMPLE = Sample(
    id=7,
    path="./examples",
    instruction="Train on citeseer with a learning rate of 0 for 5 epochs",
    arguments={"dataset": "citeseer", "lr": "0", "epochs": "5"},
    expected_outputs=["model.json"],
    timeout_s=10,
    repo="toy",
)


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    origin = tmp_path_factory.mktemp("origin")
    commit = make_toy_repo(origin)
    return Repositories({"toy": RepoPin(name="toy", source="git", url=str(origin), commit=commit)})


@pytest.fixture
def server():
    chat = ChatServer().start()
    yield chat
    chat.stop()


def _agent(server: ChatServer) -> MLAgent:
    return MLAgent(
        create_model(
            "openai/test-model",
            api_base=server.api_base,
            temperature=0.0,
            max_output_tokens=256,
            timeout_s=5.0,
            max_attempts=1,
        )
    )


@pytest.mark.parametrize("sandbox", ["bwrap", "local"])
def test_ml_agent_reads_the_parser_and_its_run_sh_passes(repos, server, tmp_path, sandbox):
    """In either sandbox: the agent's commands run in the repository as that sandbox shows it
    (the local sandbox has no /home/agent/workspace)."""
    server.replies += [
        "2. ./examples/README.md",  # README ranking
        "READ train.py",  # the README names no arguments
        "```bash\npython train.py --dataset citeseer --lr 0 --epochs 5\n```",
    ]
    trajectory = tmp_path / "t.jsonl"
    judgment = run_agent_episode(_agent(server), SAMPLE, repos.tree("toy"), trajectory=trajectory, sandbox=sandbox)
    assert judgment.passed, judgment
    prompts = [r["messages"][-1]["content"] for r in server.requests]
    assert "./examples/README.md" in prompts[0] and "Training script: train.py." in prompts[1]
    assert 'add_argument("--lr"' in prompts[2]  # the parser lines were shown
    kinds = [line.split('"kind": "')[1].split('"')[0] for line in trajectory.read_text().splitlines()]
    assert kinds[0] == "reset" and kinds[-1] == "judgment" and kinds.count("model") == 3


def test_a_wrong_command_is_judged_on_a_fresh_copy_and_everything_is_stored(repos, server, tmp_path):
    server.replies += ["./README.md", "```bash\npython train.py --dataset citeseer --lr 5 --epochs 0\n```"]
    store = Store(tmp_path)
    summary = run_agent_setting(
        [SAMPLE], _agent(server), repos, store, run_id="r", model_name="openai/test-model", out=tmp_path
    )
    [row] = store.mlbench_rows("r")
    assert row["code"].strip() == "python train.py --dataset citeseer --lr 5 --epochs 0"  # the run.sh judged
    assert row["setting"] == "agent" and row["passed"] == 0 and row["arguments_ok"] == 0 and row["execution_ok"] == 1
    assert summary.pass_at(1) == 0.0
    assert (tmp_path / "trajectories" / "toy-7.jsonl").is_file()
    # A second run resumes: the stored sample is not played again (no replies are left to play it).
    run_agent_setting([SAMPLE], _agent(server), repos, store, run_id="r", model_name="openai/test-model")
    assert len(store.mlbench_rows("r")) == 1


def test_an_agent_that_leaves_no_run_sh_fails_every_check(repos, server):
    server.replies += ["./README.md", "I do not know."]

    class Quiet(MLAgent):
        def solve(self, sample, workspace):
            raise RuntimeError("gave up")

    judgment = run_agent_episode(
        Quiet(create_model("openai/test-model", api_base=server.api_base)), SAMPLE, repos.tree("toy")
    )
    assert not judgment.passed and "no run.sh" in judgment.execution.detail
