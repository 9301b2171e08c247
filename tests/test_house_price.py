"""House Price: prepared data, the Ridge baseline reproduced exactly, labels hidden, Id checks."""

from __future__ import annotations

import pytest

import researchgym
import researchgym.agents
from researchgym.agents.scripted import ScriptedAgent
from researchgym.datasets import MANIFEST
from researchgym.runs.episode import run_episode

pytest.importorskip("sklearn", reason="the tabular extra is not installed")
TASK = "regressionKaggleHousePrice"

BETTER = """
import numpy as np, pandas as pd
from sklearn.ensemble import GradientBoostingRegressor
train = pd.read_csv("data/train.csv")
rows = pd.concat([pd.read_csv("data/validation.csv").drop(columns=["SalePrice"]), pd.read_csv("data/test.csv")])
def features(frame):
    frame = frame.drop(columns=["Id", "SalePrice"], errors="ignore")
    return pd.get_dummies(frame, dummy_na=True).astype(float)
x, z = features(train).align(features(rows), join="left", axis=1, fill_value=0.0)
model = GradientBoostingRegressor(n_estimators=400, learning_rate=0.05, max_depth=3, subsample=0.8,
                                  random_state=0).fit(x.fillna(0), np.log1p(train["SalePrice"]))
pd.DataFrame({"Id": rows["Id"], "SalePrice": np.expm1(model.predict(z.fillna(0)))}).to_csv("submission.csv", index=False)
"""


def test_dataset_is_prepared_once_with_a_manifest():
    spec = researchgym.load_task(TASK)
    spec.ensure_datasets()
    folder = spec.dataset_path(spec.datasets[0])
    assert (folder / MANIFEST).is_file()
    assert sum(1 for _ in open(folder / "train.csv")) == 1023  # header + 1,022 rows
    assert sum(1 for _ in open(folder / "test.csv")) == 293
    assert "SalePrice" not in open(folder / "test.csv").readline()


def test_baseline_reproduces_the_configured_scores_exactly():
    result = run_episode(researchgym.make(TASK), researchgym.agents.create_agent("baseline"), seed=0)
    assert result.exit_status == "submitted"
    # Ridge is deterministic: the same rows give the same numbers (TASKS.md: 0.8799891 / 30,340.11).
    assert result.final_score == pytest.approx(0.8799891, abs=1e-6)
    submitted = result.scores[-1]["test"]["metrics"]
    assert submitted["rmse"] == pytest.approx(30340.1119, abs=0.5)
    assert result.scores[0]["validation"]["value"] == pytest.approx(0.8269, abs=1e-3)


def test_a_better_model_scores_better():
    agent = ScriptedAgent(
        [f"cat > better.py <<'PYEOF'\n{BETTER}\nPYEOF", "python better.py", "validate", "submit"], then_submit=False
    )
    result = run_episode(researchgym.make(TASK), agent, seed=0)
    assert result.exit_status == "submitted" and result.final_score > 0.89


def test_test_labels_are_hidden_and_evaluate_py_cannot_be_replaced():
    env = researchgym.make(TASK)
    env.reset(seed=0)
    listing, *_ = env.step("ls -R data; cat data/answers/test_answers.csv 2>&1 | head -3")
    assert "No such file" in listing and "Id,SalePrice" not in listing  # masked: an empty folder
    env.step("python baseline.py")
    env.step('chmod u+w evaluate.py; echo \'print("{\\"r2\\": 1.0}")\' > evaluate.py')
    _, _, terminated, _, info = env.step("submit")
    env.close()
    assert terminated and info["final_score"] == pytest.approx(0.8799891, abs=1e-6)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("python baseline.py && sed -i '$d' submission.csv", "lacks a SalePrice for 1 test Ids"),
        ("python baseline.py && tail -1 submission.csv >> submission.csv", "repeats Ids"),
        ("printf 'Id,Price\\n1,2\\n' > submission.csv", "no 'SalePrice' column"),
    ],
)
def test_malformed_submissions_are_rejected_with_a_reason(command, message):
    env = researchgym.make(TASK)
    env.reset(seed=0)
    env.step(command)
    _, _, _, _, info = env.step("submit")
    env.close()
    assert info["exit_status"] == "evaluation_format_error"
    assert message in info["scores"][-1]["error"]
