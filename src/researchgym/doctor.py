"""`researchgym doctor`: what this machine can run, checked for real, offline.

Each check is a `Finding` (what, ok or not, the detail, and a hint when something is missing):
bubblewrap and user namespaces (a real sandbox is started), the package extras, the accelerator
seen on the host (device files, nvidia-smi, torch, JAX) and inside a GPU task's sandbox (the same
probes with the device files passed in), the evaluators' compile cache, and, per task, what it
needs that is missing here.
`train_baseline` then plays one task's baseline end to end through the environment (train,
validate) and reports its time and score: with a GPU task (`--gpu`) it shows that the paper's
budget trains on the accelerator inside the sandbox.

Probes that import torch or JAX run in child processes: the CLI never imports them itself.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from researchgym.extras import install_hint
from researchgym.hardware import accelerator_env, gpu_devices, sandbox_devices
from researchgym.tasks.spec import EXTRA_MODULES

#: The task `--gpu` trains: the paper's Mountain Car Continuous budget (69 s on an H200).
GPU_TASK = "rl-mountain-car-continuous"
PROBE_TIMEOUT_S = 120.0
#: One line of JSON about the accelerators torch and JAX see (each only if importable).
PROBE = r"""
import importlib.util, json
found = {}
if importlib.util.find_spec("torch"):
    try:
        import torch
        found["torch"] = {"version": torch.__version__, "cuda": torch.cuda.is_available(),
                          "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
    except Exception as exc:
        found["torch"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
if importlib.util.find_spec("jax"):
    try:
        import jax
        found["jax"] = {"version": jax.__version__, "backend": jax.default_backend(),
                        "devices": [str(d) for d in jax.devices()]}
    except Exception as exc:
        found["jax"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
print("@@probe " + json.dumps(found))
"""


@dataclass
class Finding:
    check: str
    ok: bool
    detail: str
    hint: str = ""


def _probe_result(output: str) -> dict[str, Any] | None:
    line = next((ln for ln in reversed(output.splitlines()) if ln.startswith("@@probe ")), None)
    return json.loads(line[len("@@probe ") :]) if line else None


def _describe(found: dict[str, Any]) -> tuple[bool, str]:
    """(an accelerator is in use, one line) from a probe's result."""
    parts, accelerated = [], False
    torch_info, jax_info = found.get("torch"), found.get("jax")
    if torch_info is not None:
        if "error" in torch_info:
            parts.append(f"torch failed: {torch_info['error']}")
        else:
            accelerated |= bool(torch_info["cuda"])
            parts.append(
                f"torch {torch_info['version']}: "
                + (f"CUDA on {', '.join(torch_info['devices'])}" if torch_info["cuda"] else "CPU only")
            )
    if jax_info is not None:
        if "error" in jax_info:
            parts.append(f"JAX failed: {jax_info['error']}")
        else:
            accelerated |= jax_info["backend"] != "cpu"
            parts.append(f"JAX {jax_info['version']}: {jax_info['backend']} ({', '.join(jax_info['devices'])})")
    return accelerated, "; ".join(parts) or "neither torch nor JAX is installed"


def check_bubblewrap() -> list[Finding]:
    path = shutil.which("bwrap")
    if path is None:
        return [
            Finding(
                "bubblewrap",
                False,
                "bwrap is not on PATH",
                "install it (Debian/Ubuntu: apt-get install bubblewrap), or use --sandbox local (no isolation)",
            )
        ]
    version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.strip()
    findings = [Finding("bubblewrap", True, f"{path} ({version or 'version unknown'})")]
    from researchgym.sandbox import SandboxSpec, create_sandbox

    with tempfile.TemporaryDirectory(prefix="researchgym-doctor-") as folder:
        try:
            box = create_sandbox("bwrap", SandboxSpec(workspace=Path(folder)))
            box.start()
            try:
                result = box.run("echo sandbox-ok", timeout_s=30)
            finally:
                box.close()
            ok = result.exit_code == 0 and "sandbox-ok" in result.output
            findings.append(
                Finding(
                    "user namespaces",
                    ok,
                    "a bubblewrap sandbox starts and runs a command"
                    if ok
                    else f"a command in the sandbox failed: {result.output.strip()[:300]}",
                )
            )
        except Exception as exc:  # the reason, whatever the sandbox raised
            findings.append(
                Finding(
                    "user namespaces",
                    False,
                    f"a bubblewrap sandbox does not start: {exc}"[:500],
                    "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1; "
                    "on Ubuntu 24.04 also kernel.apparmor_restrict_unprivileged_userns=0)",
                )
            )
    return findings


def check_exec_trace() -> list[Finding]:
    """strace on the host around a sandbox: what the strict ML-Bench judge needs to know which
    program each process of an answer runs (sandbox/exectrace.py)."""
    from researchgym.sandbox import SandboxSpec, create_sandbox
    from researchgym.sandbox.exectrace import ExecTrace, strace_path

    path = strace_path()
    if path is None:
        return [
            Finding(
                "exec trace",
                False,
                "strace is not on PATH",
                "the strict ML-Bench judge needs it to watch what an answer runs: apt-get install strace",
            )
        ]
    with tempfile.TemporaryDirectory(prefix="researchgym-doctor-") as folder:
        log = Path(folder) / "exec.log"
        workspace = Path(folder) / "workspace"
        workspace.mkdir()
        try:
            box = create_sandbox("bwrap", SandboxSpec(workspace=workspace, exec_trace=log))
            box.start()
            try:
                box.run("/bin/true researchgym-doctor", timeout_s=30)
            finally:
                box.close()
            trace = ExecTrace.read(log)
            seen = any(
                (image := trace.image_at(pid, float("inf"))) is not None and "researchgym-doctor" in image.argv
                for pid in trace.pids()
            )
        except Exception as exc:  # the reason, whatever strace or the sandbox raised
            return [Finding("exec trace", False, f"a traced sandbox does not start: {exc}"[:500], "")]
    if not seen:
        return [Finding("exec trace", False, f"{path} ran, but did not see a program started in the sandbox", "")]
    return [Finding("exec trace", True, f"{path} sees every program a sandbox starts (strict ML-Bench judge)")]


def check_extras() -> list[Finding]:
    findings = []
    for extra, modules in EXTRA_MODULES.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        versions = []
        for module in modules:
            if module in missing:
                continue
            distribution = {"sklearn": "scikit-learn", "PIL": "pillow"}.get(module, module)
            try:
                versions.append(f"{module} {importlib.metadata.version(distribution)}")
            except importlib.metadata.PackageNotFoundError:
                versions.append(module)
        findings.append(
            Finding(
                f"extra {extra}",
                not missing,
                ", ".join(versions) if not missing else f"missing: {', '.join(missing)}",
                "" if not missing else install_hint(extra),
            )
        )
    return findings


def check_host_accelerator() -> list[Finding]:
    devices = gpu_devices()
    findings = [
        Finding(
            "GPU device files",
            True,
            ", ".join(str(d) for d in devices)
            or "none visible (a CPU machine: GPU tasks are refused, their CPU variants run)",
        )
    ]
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        query = subprocess.run(
            [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        findings.append(
            Finding(
                "nvidia-smi",
                query.returncode == 0,
                query.stdout.strip().replace("\n", "; ") or query.stderr.strip()[:300],
            )
        )
    try:
        run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        found = _probe_result(run.stdout)
    except subprocess.TimeoutExpired:
        found = None
    if found is None:
        findings.append(Finding("host: torch / JAX", False, "the probe did not answer"))
    else:
        findings.append(host_frameworks_finding(found, bool(devices)))
    return findings


def host_frameworks_finding(found: dict[str, Any], gpu_here: bool) -> Finding:
    """The host probe's verdict: on a machine with a GPU, every installed framework must use it."""
    accelerated, line = _describe(found)
    hint = _cpu_only_hint(found) if gpu_here else ""
    if gpu_here and not accelerated and not hint:  # e.g. JAX failed to start and no torch
        hint = "a GPU is here but neither torch nor JAX uses it: install their CUDA builds"
    return Finding("host: torch / JAX", not hint, line, hint)


def _cpu_only_hint(found: dict[str, Any]) -> str:
    """On a machine with a GPU: what to install for each framework that is installed but runs on
    the CPU (its GPU tasks would train there, slowly and silently); empty when none does."""
    hints = []
    jax_info, torch_info = found.get("jax"), found.get("torch")
    if jax_info is not None and jax_info.get("backend") == "cpu":
        hints.append(
            "JAX runs on the CPU, so the RL -v0 tasks would train there: install its CUDA build with "
            + install_hint("rl-gpu")
        )
    if torch_info is not None and "error" not in torch_info and not torch_info["cuda"]:
        hints.append(
            "torch is a CPU build, so CIFAR-10, COCO, MNLI and FineWeb would train on the CPU: install a "
            "CUDA build (.venv/bin/pip install --force-reinstall torch from PyPI, whose Linux wheels use CUDA)"
        )
    return "; ".join(hints)


def check_sandbox_accelerator() -> list[Finding]:
    """The same probe inside a bubblewrap sandbox built as a GPU task's is (device files and the
    shared-GPU environment)."""
    from researchgym.sandbox import Limits, SandboxSpec, create_sandbox

    devices = sandbox_devices()
    with tempfile.TemporaryDirectory(prefix="researchgym-doctor-") as folder:
        Path(folder, "probe.py").write_text(PROBE)
        spec = SandboxSpec(
            workspace=Path(folder),
            env=accelerator_env(1),
            devices=devices,
            limits=Limits(memory_mb=None, command_timeout_s=PROBE_TIMEOUT_S),
        )
        try:
            box = create_sandbox("bwrap", spec)
            box.start()
            try:
                result = box.run("python probe.py", timeout_s=PROBE_TIMEOUT_S)
            finally:
                box.close()
        except Exception as exc:
            return [Finding("sandbox: torch / JAX", False, f"the sandbox did not start: {exc}"[:500])]
    found = _probe_result(result.output)
    if found is None:
        return [Finding("sandbox: torch / JAX", False, f"the probe failed: {result.output.strip()[-300:]}")]
    accelerated, line = _describe(found)
    return [
        Finding(
            "sandbox: torch / JAX",
            accelerated or not devices,
            line + (f" (given {len(devices)} device files)" if devices else ""),
            ""
            if accelerated or not devices
            else "the GPU is visible on the host but not used in the "
            "sandbox: check the device files' permissions and the CUDA builds of torch/JAX",
        )
    ]


def check_tasks() -> list[Finding]:
    """Per task, what it needs that this machine lacks (extras, a GPU, data or files)."""
    from researchgym.datasets import is_prepared
    from researchgym.tasks.registry import all_tasks

    gpus = len(gpu_devices())
    findings = []
    for spec in all_tasks(errors=[]):
        lacks = [f"extra {extra}" for extra in spec.missing_requirements()]
        if spec.requires.gpus > gpus:
            lacks.append(
                f"{spec.requires.gpus} GPU(s) (this machine: {gpus})"
                + (
                    f"; runs anywhere: {', '.join(spec.requires.cpu_alternatives)}"
                    if spec.requires.cpu_alternatives
                    else ""
                )
            )
        lacks += [f"{lack.field}: {lack.problem}" for lack in spec.unavailable]
        unprepared = [ds.name for ds in spec.datasets if ds.prepare and not is_prepared(spec.dataset_path(ds))]
        if unprepared:
            lacks.append(
                f"data not prepared yet ({', '.join(unprepared)}): researchgym prepare {spec.id} "
                "(needs the network or RESEARCHGYM_HUB_MIRROR once)"
            )
        findings.append(Finding(f"task {spec.id}", not lacks, "ready" if not lacks else "; ".join(lacks)))
    return findings


def check_compile_cache() -> list[Finding]:
    """Where evaluators keep their compiled programs, and whether researchgym can write there
    (if not, every RL evaluation compiles its rollout again: slower, never scored differently)."""
    import os

    import researchgym.compile_cache as compile_cache

    root = compile_cache.shared_root()
    if root is None:
        return [Finding("compile cache", True, f"off ({compile_cache.VARIABLE}): every evaluation compiles afresh")]
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        return [
            Finding(
                "compile cache",
                False,
                f"{root} cannot be written ({existing} is not a writable folder): every evaluation compiles afresh",
                f"set {compile_cache.VARIABLE} to a writable folder, or to off",
            )
        ]
    folders = sorted(folder for folder in root.iterdir() if folder.is_dir()) if root.is_dir() else []
    held = [list(compile_cache.entries(folder)) for folder in folders]
    size = sum(entry_size for folder in held for _, entry_size in folder)
    return [
        Finding(
            "compile cache",
            True,
            f"{root}: {len(held)} evaluator(s), {sum(map(len, held))} programs, {size / 1e6:.1f} MB",
        )
    ]


def run_checks(*, tasks: bool = True) -> list[Finding]:
    findings = check_bubblewrap() + check_extras() + check_host_accelerator() + check_compile_cache()
    if any(f.check == "user namespaces" and f.ok for f in findings):
        findings += check_exec_trace() + check_sandbox_accelerator()
    return findings + (check_tasks() if tasks else [])


@dataclass
class TrainingCheck:
    task: str
    seconds: float
    validate_seconds: float
    score: float | None
    baseline: float | None
    metric: str
    accelerator: str
    #: Whether torch or JAX used a GPU in the task's sandbox.
    on_accelerator: bool
    quick: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Two PPO updates instead of the budget: proves the pipeline, not the learning.
QUICK_CONFIG = (
    "python - <<'PYEOF'\n"
    "import yaml\n"
    "config = yaml.safe_load(open('src/config.yaml'))\n"
    "c = config['train_config']\n"
    "c['num_train_steps'] = c['num_train_envs'] * c['n_steps'] * 2\n"
    "c['evaluate_every_epochs'] = 1000\n"
    "yaml.safe_dump(config, open('src/config.yaml', 'w'))\n"
    "PYEOF"
)


def train_baseline(task_id: str, *, quick: bool = False, sandbox: str = "bwrap") -> TrainingCheck:
    """Play the task's baseline end to end through the environment: its training command
    (`python src/train.py` for the RL tasks), then `validate`; the time of the training and the
    validation score. Raises RuntimeError with the observation when a step fails."""
    import researchgym

    env = researchgym.make(task_id, sandbox=sandbox)
    try:
        env.reset(seed=0)
        spec = env.task
        if quick:
            env.step(QUICK_CONFIG)
        probe, *_ = env.step("python - <<'PYEOF'\n" + PROBE + "PYEOF")
        found = _probe_result(probe) or {}
        on_accelerator, accelerator = _describe(found)
        started = time.monotonic()
        trained, _, _, _, info = env.step("python src/train.py")
        seconds = time.monotonic() - started
        if info.get("exit_code") != 0 or info.get("timed_out"):
            raise RuntimeError(f"training {task_id} failed:\n{trained[-2000:]}")
        started = time.monotonic()
        validated, _, _, _, info = env.step("validate")
        validate_seconds = time.monotonic() - started
        scores = [s for s in info.get("scores") or [] if s.get("validation")]
        value = scores[-1]["validation"].get("value") if scores else None
        if value is None:
            raise RuntimeError(f"validating {task_id} gave no score:\n{validated[-2000:]}")
        return TrainingCheck(
            task_id,
            round(seconds, 1),
            round(validate_seconds, 1),
            float(value),
            spec.baseline_score,
            spec.metric.name,
            accelerator,
            on_accelerator,
            quick,
        )
    finally:
        env.close()
