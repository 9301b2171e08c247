"""Hub plumbing: an unreachable hub fails fast with a message that says how to pre-fetch, GPU
requirements are declared in the spec and refused clearly, GPU devices reach the sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_task

from researchgym.errors import TaskConfigError
from researchgym.hardware import HardwareError, check_gpus, gpu_devices, sandbox_devices
from researchgym.tasks.loader import load_task_file
from researchgym.tasks.spec import HardwareSpec


def _offline_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in (
        "RESEARCHGYM_HUB_MIRROR",
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        env.pop(name, None)
    # A closed local port stands in for the hub: the probe fails as it does without a network.
    env.update(
        HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"), RESEARCHGYM_CACHE=str(tmp_path / "cache")
    )
    return env


@pytest.mark.parametrize(
    "task, dataset",
    [
        ("cifar10", "uoft-cs/cifar10"),
        ("mnli", "SetFit/mnli"),
        ("coco-captioning", "lmms-lab/COCO-Caption"),
        ("fineweb-lm", "kjj0/fineweb10B-gpt2"),
    ],
)
def test_prepare_without_network_or_cache_fails_fast_with_what_to_do(tmp_path, task, dataset):
    pytest.importorskip("datasets", reason="the hub extra is not installed")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "researchgym.cli", "prepare", task],
        env=_offline_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert dataset in output and f"researchgym prepare {task}" in output, output
    assert "Traceback" not in output
    assert elapsed < 60
    assert not (tmp_path / "cache" / "datasets" / task / task).exists()  # nothing half-built is kept


def test_make_raises_a_researchgym_error_not_a_stack_trace(tmp_path, monkeypatch):
    pytest.importorskip("datasets", reason="the hub extra is not installed")
    import researchgym
    from researchgym.datasets import DatasetUnavailableError

    for name, value in _offline_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RESEARCHGYM_ALLOW_NO_GPU", "1")
    with pytest.raises(DatasetUnavailableError, match="uoft-cs/cifar10"):
        researchgym.make("cifar10")


def test_requires_accepts_the_gpu_shorthand_and_rejects_nonsense(tmp_path):
    folder = write_task(tmp_path / "gpu", extra_yaml="requires: gpu\n")
    assert load_task_file(folder / "task.yaml").requires == HardwareSpec(gpus=1)
    folder = write_task(tmp_path / "two", extra_yaml="requires: {gpus: 2, cpu_alternatives: [x]}\n")
    assert load_task_file(folder / "task.yaml").requires.gpus == 2
    folder = write_task(tmp_path / "bad", extra_yaml="requires: tpu\n")
    with pytest.raises(TaskConfigError, match="requires"):
        load_task_file(folder / "task.yaml")


def test_gpu_check_counts_visible_devices(tmp_path, monkeypatch):
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"):
        (dev / name).touch()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert [p.name for p in gpu_devices(dev)] == ["nvidia0", "nvidia1"]
    assert [p.name for p in sandbox_devices(dev)] == ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [p.name for p in gpu_devices(dev)] == ["nvidia1"]
    assert sandbox_devices(tmp_path / "empty") == []


def test_gpu_check_refuses_and_can_be_overridden(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.delenv("RESEARCHGYM_ALLOW_NO_GPU", raising=False)
    check_gpus("cpu-task", 0)
    with pytest.raises(HardwareError, match="needs 2 GPU"):
        check_gpus("big", 2, variants=["small"])
    monkeypatch.setenv("RESEARCHGYM_ALLOW_NO_GPU", "1")
    check_gpus("big", 2)
