"""Fashion-MNIST: data from the Debian package, labels of the test images hidden, the baseline
recipe trains (one epoch here; the full run is benchmarks/fashion_mnist_baseline.py)."""

from __future__ import annotations

import numpy as np
import pytest

import researchgym
from researchgym.agents.scripted import ScriptedAgent
from researchgym.runs.episode import run_episode

pytest.importorskip("torch", reason="the vision extra is not installed")
TASK = "imageClassificationFMnist"


def test_dataset_splits_and_hidden_labels():
    spec = researchgym.load_task(TASK)
    spec.ensure_datasets()
    folder = spec.dataset_path(spec.datasets[0])
    train, validation = np.load(folder / "train.npz"), np.load(folder / "validation.npz")
    assert train["images"].shape == (50_000, 28, 28) and validation["labels"].shape == (10_000,)
    assert set(np.load(folder / "test_images.npz").files) == {"images"}
    assert np.bincount(np.load(folder / "answers" / "test_labels.npy")).tolist() == [1000] * 10
    env = researchgym.make(TASK)
    env.reset(seed=0)
    listing, *_ = env.step("ls -R data; python -c \"import numpy; numpy.load('data/answers/test_labels.npy')\" 2>&1 | tail -1")
    env.close()
    assert "test_labels" in listing and "No such file" in listing  # masked (only the error names it)
    assert "validation.npz" in listing


@pytest.mark.slow
def test_one_epoch_of_the_baseline_recipe_learns():
    agent = ScriptedAgent(["python baseline.py --epochs 1", "validate", "submit"], then_submit=False)
    result = run_episode(researchgym.make(TASK), agent, seed=0)
    assert result.exit_status == "submitted"
    # One epoch (782 steps at lr 5e-5 after 500 warm-up steps) is far from converged but well
    # above chance (0.1); the full 10-epoch figure is in benchmarks/RESULTS.md.
    assert 0.5 < result.scores[0]["validation"]["value"] < 0.95
    assert 0.5 < result.final_score < 0.95


def test_submissions_are_checked_and_evaluate_py_cannot_be_replaced():
    env = researchgym.make(TASK)
    env.reset(seed=0)
    env.step("(echo id,label; for s in val test; do seq 0 9999 | sed \"s/^/$s-/; s/$/,0/\"; done) > submission.csv")
    env.step("chmod u+w evaluate.py; echo 'print(\"{\\\"accuracy\\\": 1.0}\")' > evaluate.py")
    obs, _, _, _, info = env.step("validate")
    assert info["scores"][-1]["validation"]["value"] == pytest.approx(0.1, abs=0.02)  # all zeros: one class
    env.step("sed -i '$d' submission.csv")
    _, _, _, _, info = env.step("submit")
    env.close()
    assert info["exit_status"] == "evaluation_format_error" and "lacks 1 test ids" in info["scores"][-1]["error"]
