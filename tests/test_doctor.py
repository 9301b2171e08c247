"""`researchgym doctor`: real checks on this machine (a bubblewrap sandbox started, the probes of
torch and JAX run on the host and in a sandbox), what each task lacks, the clear refusal of
`--gpu` without a GPU, and a baseline trained end to end through the environment (slow)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from researchgym.cli import app
from researchgym.tasks.spec import EXTRA_MODULES


def doctor(*args: str):
    result = CliRunner().invoke(app, ["doctor", *args])
    return result


@pytest.fixture
def no_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # none visible, even on a GPU machine
    monkeypatch.delenv("RESEARCHGYM_ALLOW_NO_GPU", raising=False)
    monkeypatch.setenv("RESEARCHGYM_CACHE", str(tmp_path / "cache"))  # nothing prepared


def findings_of(result) -> dict[str, dict]:
    assert result.exit_code == 0, result.output
    return {f["check"]: f for f in json.loads(result.stdout)["findings"]}


def test_the_machine_checks_are_real(no_gpu):
    found = findings_of(doctor("--json", "--no-tasks"))
    assert found["bubblewrap"]["ok"] and "bwrap" in found["bubblewrap"]["detail"]
    assert found["user namespaces"]["ok"]  # a sandbox really started and ran a command
    assert found["exec trace"]["ok"] and "strace" in found["exec trace"]["detail"]  # and strace saw it
    assert {f"extra {extra}" for extra in EXTRA_MODULES} <= set(found)
    assert found["GPU device files"]["ok"] and "none visible" in found["GPU device files"]["detail"]
    assert found["compile cache"]["ok"] and "evaluator(s)" in found["compile cache"]["detail"]
    for where in ("host: torch / JAX", "sandbox: torch / JAX"):
        detail = found[where]["detail"]
        if importlib.util.find_spec("jax"):
            assert "JAX" in detail and "cpu" in detail, detail
        if importlib.util.find_spec("torch"):
            assert "torch" in detail and "CPU only" in detail, detail


def test_a_framework_that_would_leave_a_gpu_idle_is_named_with_its_cuda_build():
    """On a GPU machine, JAX or torch installed as a CPU build (what this machine has) fails the
    host check with the command that installs the CUDA build; frameworks on the GPU pass."""
    import subprocess
    import sys

    from researchgym.doctor import PROBE, _probe_result, host_frameworks_finding

    here = _probe_result(subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True).stdout)
    assert here is not None
    assert host_frameworks_finding(here, gpu_here=False).ok  # no GPU: the CPU is all there is
    finding = host_frameworks_finding(here, gpu_here=True)  # this probe's result beside a GPU
    if importlib.util.find_spec("jax") or importlib.util.find_spec("torch"):
        assert not finding.ok
    if importlib.util.find_spec("jax"):
        assert "JAX runs on the CPU" in finding.hint and "make install EXTRAS=rl-gpu" in finding.hint, finding
    if importlib.util.find_spec("torch"):
        assert "torch is a CPU build" in finding.hint, finding
    on_gpu = {
        "jax": {"version": "0.10.2", "backend": "gpu", "devices": ["cuda:0"]},
        "torch": {"version": "2.13.0", "cuda": True, "devices": ["NVIDIA H200"]},
    }
    assert host_frameworks_finding(on_gpu, gpu_here=True).ok and not host_frameworks_finding(on_gpu, True).hint
    torch_on_cpu = host_frameworks_finding({**on_gpu, "torch": {**on_gpu["torch"], "cuda": False}}, gpu_here=True)
    assert not torch_on_cpu.ok and "JAX" not in torch_on_cpu.hint and "torch is a CPU build" in torch_on_cpu.hint
    broken = host_frameworks_finding({"jax": {"error": "RuntimeError: no backend"}}, gpu_here=True)
    assert not broken.ok and "neither torch nor JAX uses it" in broken.hint


def test_each_task_says_what_it_lacks_here(no_gpu):
    found = findings_of(doctor("--json"))
    assert found["task battleOfSexes"]["ok"]
    paper = found["task rl-mountain-car-continuous"]
    assert not paper["ok"] and "1 GPU(s)" in paper["detail"] and "rl-mountain-car-continuous-cpu" in paper["detail"]
    cifar = found["task cifar10"]
    assert not cifar["ok"] and "researchgym prepare cifar10" in cifar["detail"]


def test_a_missing_extra_is_named_with_the_command_that_installs_it(no_gpu, monkeypatch):
    # a real extra whose module is missing (the hint must name an extra that exists)
    monkeypatch.setitem(EXTRA_MODULES, "tabular", ["no_such_module_for_researchgym"])
    found = findings_of(doctor("--json", "--no-tasks"))
    assert not found["extra tabular"]["ok"] and "no_such_module_for_researchgym" in found["extra tabular"]["detail"]
    assert "make install EXTRAS=tabular" in found["extra tabular"]["hint"]
    assert ".[tabular]" in found["extra tabular"]["hint"]


def test_without_bubblewrap_the_doctor_fails_and_says_what_to_do(no_gpu, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    result = doctor("--json", "--no-tasks")
    assert result.exit_code == 1
    found = {f["check"]: f for f in json.loads(result.stdout)["findings"]}
    assert not found["bubblewrap"]["ok"] and "apt-get install bubblewrap" in found["bubblewrap"]["hint"]


def test_gpu_training_without_a_gpu_is_refused_clearly(no_gpu):
    result = doctor("--gpu", "--no-tasks")
    assert result.exit_code == 1
    assert "none is visible" in result.output and "--train rl-mountain-car-continuous-cpu --quick" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gymnax") is None, reason="the rl extra is not installed")
def test_a_baseline_trains_and_validates_end_to_end_in_its_sandbox(no_gpu):
    result = doctor("--json", "--no-tasks", "--train", "rl-mountain-car-continuous-cpu", "--quick")
    assert result.exit_code == 0, result.output
    training = json.loads(result.stdout)["training"]
    assert training["task"] == "rl-mountain-car-continuous-cpu" and training["quick"]
    assert training["seconds"] > 0 and training["validate_seconds"] > 0
    assert isinstance(training["score"], float) and training["baseline"] == pytest.approx(1.42895)
    assert not training["on_accelerator"] and "cpu" in training["accelerator"]
