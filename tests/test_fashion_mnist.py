"""Fashion-MNIST: data from the Debian package, labels of the test images hidden, the baseline
recipe trains (one epoch here; the full run is benchmarks/fashion_mnist_baseline.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import researchgym
import researchgym.agents
from researchgym.runs.episode import run_episode

pytest.importorskip("torch", reason="the vision extra is not installed")
TASK = "imageClassificationFMnist"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")


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
    listing, *_ = env.step(
        "ls -R data; python -c \"import numpy; numpy.load('data/answers/test_labels.npy')\" 2>&1 | tail -1"
    )
    # The Debian package the data was built from is under /usr, which every sandbox binds: its
    # t10k-labels file is the test labels (the red team read them there and scored 1.0).
    upstream, *_ = env.step(f"ls -A {DEBIAN}; cat {DEBIAN}/t10k-labels-idx1-ubyte.gz 2>/dev/null | wc -c")
    # The prepared data's manifest holds the SHA-256 of the hidden labels: enough to confirm a guess.
    manifest, *_ = env.step("cat data/.researchgym-manifest.json 2>/dev/null | wc -c")
    env.close()
    assert "test_labels" in listing and "No such file" in listing  # masked (only the error names it)
    assert "validation.npz" in listing
    assert manifest.splitlines()[0] == "0", manifest
    if (DEBIAN / "t10k-labels-idx1-ubyte.gz").is_file():
        assert upstream.splitlines()[0] == "0", upstream  # an empty folder: nothing listed, nothing read


@pytest.mark.slow
# 2.5 min of training alone on 2 free cores, several times that on a busy machine: the guard is the
# task's own training limit (30 min) plus the evaluation, so only a hang fails it, never the load.
@pytest.mark.timeout(2400)
def test_baseline_agent_trains_the_full_recipe_end_to_end():
    result = run_episode(researchgym.make(TASK), researchgym.agents.create_agent("baseline"), seed=0)
    assert result.exit_status == "submitted"
    # TASKS.md: configured 0.7835, but re-running the unmodified baseline gives 0.8478-0.8484.
    # Ours trains on 50,000 images (10,000 are the validation split) on a CPU and measured
    # 0.8428 on the test images; the band allows for torch versions and CPU kernels.
    assert 0.82 < result.final_score < 0.87
    assert 0.82 < result.scores[0]["validation"]["value"] < 0.87


def test_submissions_are_checked_and_evaluate_py_cannot_be_replaced():
    env = researchgym.make(TASK)
    env.reset(seed=0)
    env.step('(echo id,label; for s in val test; do seq 0 9999 | sed "s/^/$s-/; s/$/,0/"; done) > submission.csv')
    env.step('chmod u+w evaluate.py; echo \'print("{\\"accuracy\\": 1.0}")\' > evaluate.py')
    obs, _, _, _, info = env.step("validate")
    assert info["scores"][-1]["validation"]["value"] == pytest.approx(0.1, abs=0.02)  # all zeros: one class
    env.step("sed -i '$d' submission.csv")
    _, _, _, _, info = env.step("submit")
    env.close()
    assert info["exit_status"] == "evaluation_format_error" and "lacks 1 test ids" in info["scores"][-1]["error"]
