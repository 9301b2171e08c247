"""ML-Bench's LLM setting: the four contexts, k answers judged and stored, pass@k both ways, and
`researchgym mlbench llm` end to end against a real OpenAI-style server and a pinned repository."""

from __future__ import annotations

import json

import pytest
from mlbench_toy import make_toy_repo
from openai_server import ChatServer
from typer.testing import CliRunner

from researchgym.cli import app
from researchgym.mlbench.context import bm25_window, build_context, code_context
from researchgym.mlbench.data import MLBenchError
from researchgym.mlbench.llm import Repositories, run_llm_setting
from researchgym.mlbench.repos import RepoPin
from researchgym.mlbench.schema import Sample
from researchgym.models.scripted import ScriptedModel
from researchgym.runs.store import Store

# The toy repository is materialised in a cache of this module, not the user's.
pytestmark = pytest.mark.usefixtures("private_researchgym_cache")

SAMPLE = Sample(
    id=3,
    path="./examples",
    repo="toy",
    instruction="Train on citeseer with lr 0 for 5 epochs",
    arguments={"dataset": "citeseer", "lr": "0", "epochs": "5"},
    oracle="Run `python train.py`.",
    expected_outputs=["model.json"],
    timeout_s=5,
)
GOLD = "```bash\npython train.py --dataset citeseer --lr 0 --epochs 5\n```"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    origin = tmp_path_factory.mktemp("origin")
    return origin, make_toy_repo(origin)


@pytest.fixture(scope="module")
def repos(toy):
    origin, commit = toy
    return Repositories({"toy": RepoPin(name="toy", source="git", url=str(origin), commit=commit)})


def test_the_four_contexts(repos, tmp_path):
    tree = repos.tree("toy")
    whole = code_context(tree, budget_chars=10_000)
    assert whole.index("### README.md") < whole.index("### examples/README.md") < whole.index("### examples/train.py")
    assert len(code_context(tree, budget_chars=120)) == 120
    assert "cora" in bm25_window(tree, "which dataset does train.py use, cora?")
    assert build_context(SAMPLE, tree, "oracle") == SAMPLE.oracle
    assert build_context(SAMPLE, tree, "instruction") == ""
    with pytest.raises(ValueError, match="unknown context setting"):
        build_context(SAMPLE, tree, "everything")


def test_k_answers_are_judged_stored_and_summarised(repos, tmp_path):
    model = ScriptedModel(
        [GOLD, "```bash\npython train.py --dataset citeseer --lr 5 --epochs 5\n```", "```python\nimport os\n```"]
    )
    store = Store(tmp_path)
    summary = run_llm_setting([SAMPLE], model, repos, store, run_id="r", setting="oracle", k=3)
    rows = store.mlbench_rows("r")
    assert [r["passed"] for r in rows] == [1, 0, 0]
    assert rows[1]["arguments_ok"] == 0 and rows[2]["type_ok"] == 0
    assert summary.pass_at(1) == pytest.approx(1 / 3) and summary.pass_at(3) == 1.0
    assert summary.first_pass_at(1) == 1.0  # ML-Bench's number: the first answer happened to pass
    assert "Run `python train.py`." in model.calls[0][-1]["content"]
    # Resuming asks for nothing more.
    run_llm_setting([SAMPLE], ScriptedModel([]), repos, store, run_id="r", setting="oracle", k=3)
    assert len(store.mlbench_rows("r")) == 3


def test_answers_judged_at_once_are_stored_as_when_judged_one_by_one(repos, tmp_path):
    replies = [GOLD, "```bash\npython train.py --dataset citeseer --lr 5 --epochs 5\n```", "```python\nimport os\n```"]
    other = SAMPLE.model_copy(update={"id": 4})
    rows = {}
    for workers in (1, 3):
        model = ScriptedModel(replies + replies[::-1])
        store = Store(tmp_path / f"w{workers}")
        run_llm_setting([SAMPLE, other], model, repos, store, run_id="r", k=3, workers=workers)
        assert len(model.calls) == 6  # asked once per attempt, in order: each attempt keeps its reply
        rows[workers] = [(r["sample"], r["attempt"], r["passed"], r["code"]) for r in store.mlbench_rows("r")]
    assert sorted(rows[3]) == sorted(rows[1])
    assert [passed for _, _, passed, _ in sorted(rows[1])] == [1, 0, 0, 0, 0, 1]


def test_a_failing_judgment_stops_the_run_but_keeps_what_was_judged(repos, tmp_path):
    broken = SAMPLE.model_copy(update={"id": 5, "setup": "exit 3\n"})
    store = Store(tmp_path)
    with pytest.raises(MLBenchError, match="the setup of sample .*5 failed"):
        run_llm_setting([SAMPLE, broken], ScriptedModel([GOLD, GOLD]), repos, store, run_id="r", workers=2)
    assert [(r["sample"], r["passed"]) for r in store.mlbench_rows("r")] == [(SAMPLE.key, 1)]
    with pytest.raises(MLBenchError, match="workers must be at least 1"):
        run_llm_setting([SAMPLE], ScriptedModel([]), repos, store, run_id="r", workers=0)


def test_the_cli_runs_the_llm_setting_against_a_server(toy, tmp_path):
    origin, commit = toy
    (tmp_path / "pins.yaml").write_text(f"- name: toy\n  source: git\n  url: {origin}\n  commit: {commit}\n")
    (tmp_path / "samples.jsonl").write_text(json.dumps(SAMPLE.model_dump()) + "\n")
    server = ChatServer(replies=[GOLD, "```bash\nsleep 30\n```"]).start()
    try:
        result = CliRunner().invoke(
            app,
            [
                "mlbench",
                "llm",
                "--model",
                "openai/test-model",
                "--api-base",
                server.api_base,
                "--data",
                str(tmp_path / "samples.jsonl"),
                "--pins",
                str(tmp_path / "pins.yaml"),
                "-k",
                "2",
                "--out",
                str(tmp_path / "run"),
                "--workers",
                "2",
            ],
            env={"COLUMNS": "200"},
        )
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert "pass@1" in result.output and "0.5000" in result.output and "mlbench_first_pass@1" in result.output
    rows = Store(tmp_path / "run").mlbench_rows()
    assert [r["passed"] for r in rows] == [1, 0]
    assert "timed out" in json.loads(rows[1]["detail"])["execution"]["detail"]


def test_samples_without_pins_get_a_clear_error(tmp_path):
    (tmp_path / "samples.jsonl").write_text(json.dumps(SAMPLE.model_dump()) + "\n")
    result = CliRunner().invoke(
        app, ["mlbench", "llm", "--model", "openai/x", "--data", str(tmp_path / "samples.jsonl")]
    )
    assert result.exit_code == 2 and "--pins" in result.output


def test_a_python_task_shows_the_model_the_code_that_runs_before_its_answer():
    from researchgym.mlbench.llm import task_message

    python = Sample(
        id=1, path=".", instruction="Fit it", prefix_code="X = load('train.csv')\n", type="Python Code", repo="toy"
    )
    assert "X = load('train.csv')" in task_message(python, "")
    bash = Sample(id=2, path=".", instruction="Fit it", prefix_code="X = 1\n", repo="toy")
    assert "X = 1" not in task_message(bash, "")
