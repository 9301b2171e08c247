"""What accelerators this machine has, and what a sandbox must see to use them.

Only NVIDIA GPUs are detected (the device files the driver creates); a task that says
`requires: gpu` is refused on a machine without one, with a message that names the task, the
offline variants that run anywhere, and the escape hatch for trying a GPU task on the CPU.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from researchgym.errors import ResearchGymError

#: Setting this to 1 runs GPU tasks on a machine without a GPU (slowly): for small fixtures.
ALLOW_NO_GPU_ENV = "RESEARCHGYM_ALLOW_NO_GPU"
_GPU_DEVICE = re.compile(r"nvidia\d+$")
#: Control devices a CUDA process opens besides its GPU's own file.
_CONTROL_DEVICES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


class HardwareError(ResearchGymError):
    """The task needs hardware this machine does not have."""


def gpu_devices(dev: Path = Path("/dev")) -> list[Path]:
    """The per-GPU device files (/dev/nvidia0, ...), honouring CUDA_VISIBLE_DEVICES when numeric."""
    try:
        found = sorted(
            (p for p in dev.iterdir() if _GPU_DEVICE.match(p.name)), key=lambda p: int(p.name[len("nvidia") :])
        )
    except OSError:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and all(part.strip().isdigit() for part in visible.split(",") if part.strip()):
        wanted = {f"nvidia{part.strip()}" for part in visible.split(",") if part.strip()}
        found = [p for p in found if p.name in wanted]
    return found


def gpu_count() -> int:
    return len(gpu_devices())


def sandbox_devices(dev: Path = Path("/dev")) -> list[Path]:
    """Every device file a sandbox must be given for CUDA to work: the GPUs and the control files."""
    gpus = gpu_devices(dev)
    if not gpus:
        return []
    return gpus + [dev / name for name in _CONTROL_DEVICES if (dev / name).exists()]


#: The environment of a sandbox whose task declares a GPU: JAX/XLA and TensorFlow allocate device
#: memory as they need it instead of taking most of the GPU at start, so the agent's training, an
#: evaluator and a policy server (several processes, one GPU) fit together. torch allocates on
#: demand already.
SHARED_GPU_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def accelerator_env(gpus: int) -> dict[str, str]:
    """The variables a sandbox of a task declaring `gpus` GPUs gets (none for a CPU task)."""
    return dict(SHARED_GPU_ENV) if gpus > 0 else {}


def check_gpus(task_id: str, needed: int, *, variants: list[str] | None = None) -> None:
    """Raise HardwareError unless `needed` GPUs are present (or the user opted out)."""
    if needed <= 0 or os.environ.get(ALLOW_NO_GPU_ENV) == "1":
        return
    have = gpu_count()
    if have >= needed:
        return
    alternatives = f" Tasks that run without a GPU: {', '.join(variants)}." if variants else ""
    raise HardwareError(
        f"task '{task_id}' needs {needed} GPU(s) but this machine has {have} "
        f"(no /dev/nvidiaN device is visible).{alternatives} To run it on the CPU anyway (very slowly; "
        f"useful only with small data), set {ALLOW_NO_GPU_ENV}=1."
    )
