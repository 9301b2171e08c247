"""CIFAR-10 from the hub: prepared from a tiny mirror of uoft-cs/cifar10 written with `datasets`,
then the real baseline and evaluator run end to end in the sandbox; GPU and offline checks."""

from __future__ import annotations

import numpy as np
import pytest

import researchgym
import researchgym.agents
from researchgym.hardware import HardwareError
from researchgym.runs.episode import run_episode

pytest.importorskip("torch", reason="the vision extra is not installed")
pytest.importorskip("datasets", reason="the hub extra is not installed")
from hub_fixtures import write_cifar10  # noqa: E402

TASK = "cifar10"


@pytest.fixture(scope="module")
def mirror(hub_env):
    write_cifar10(hub_env, train=250, test=60)
    return hub_env


def test_prepare_splits_the_hub_data_and_hides_the_test_labels(mirror):
    spec = researchgym.load_task(TASK)
    spec.ensure_datasets()
    folder = spec.dataset_path(spec.datasets[0])
    train, validation = np.load(folder / "train.npz"), np.load(folder / "validation.npz")
    assert train["images"].shape == (200, 32, 32, 3) and validation["labels"].shape == (50,)
    assert set(np.load(folder / "test_images.npz").files) == {"images"}
    assert np.load(folder / "answers" / "test_labels.npy").shape == (60,)
    env = researchgym.make(TASK)
    env.reset(seed=0)
    listing, *_ = env.step("ls data; cat data/answers/test_labels.npy")
    env.close()
    assert "test_images.npz" in listing and "test_labels.npy: No such file" in listing  # masked


def test_baseline_trains_and_is_scored_end_to_end(mirror):
    result = run_episode(researchgym.make(TASK), researchgym.agents.create_agent("baseline"), seed=0)
    assert result.exit_status == "submitted", result
    assert 0.0 <= result.final_score <= 1.0 and result.scores[0]["validation"]["value"] <= 1.0


def test_the_score_is_the_accuracy_against_the_hidden_labels(mirror):
    spec = researchgym.load_task(TASK)
    truth = np.load(spec.dataset_path(spec.datasets[0]) / "answers" / "test_labels.npy")
    env = researchgym.make(TASK)
    env.reset(seed=0)
    observation, *_ = env.step("python baseline.py --epochs 1")
    assert "wrote submission.csv" in observation
    rows = (env.workspace / "submission.csv").read_text().split()[1:]
    predicted = np.array([int(row.split(",")[1]) for row in rows if row.startswith("test-")])
    _, _, _, _, info = env.step("submit")
    env.close()
    assert info["exit_status"] == "submitted"
    assert info["scores"][-1]["test"]["value"] == pytest.approx(float((predicted == truth).mean()))


def test_a_gpu_task_is_refused_without_a_gpu(mirror, monkeypatch):
    monkeypatch.delenv("RESEARCHGYM_ALLOW_NO_GPU")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # even on a GPU machine: none visible
    with pytest.raises(HardwareError) as caught:
        researchgym.make(TASK)
    message = str(caught.value)
    assert "'cifar10' needs 1 GPU(s)" in message and "mnist-5k" in message
    assert "RESEARCHGYM_ALLOW_NO_GPU=1" in message
