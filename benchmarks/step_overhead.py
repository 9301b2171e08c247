"""How much does researchgym itself add to each agent step and each episode reset?

An agent calls `env.step(command)` many times, so the harness's own overhead per step must stay
far below the cost of the commands it runs. This script measures, in one run, on the built-in
`battleOfSexes` task:

1. `env.step("echo hi")` latency (p50, p95) on the `bwrap` and `local` sandboxes, without a
   trajectory (no file writes) and with one (one JSONL line appended and flushed per step);
2. a fresh `bwrap ... /bin/true` per command, i.e. what a stateless sandbox would pay for every
   step instead of reusing one persistent shell;
3. `env.reset()` latency (each reset tears down the sandbox and builds a new one);
4. the ratio of (2) to the persistent-shell step on bwrap.

Run: `make bench` or `.venv/bin/python benchmarks/step_overhead.py`. Needs bubblewrap.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import researchgym
from researchgym.sandbox.base import SandboxSpec
from researchgym.sandbox.bwrap import BwrapSandbox
from researchgym.sandbox.local import LocalSandboxWarning

TASK = "battleOfSexes"
LIMITS = {"max_steps": 100_000}
WARMUP, STEPS, RESETS, SPAWNS = 20, 300, 20, 50
STEP_TARGET_MS, RESET_TARGET_MS = 1.0, 100.0
BASH = ["/bin/bash", "--noprofile", "--norc"]


def p50_p95(samples: list[float]) -> tuple[float, float]:
    """Median and 95th percentile, in milliseconds."""
    return statistics.median(samples) * 1e3, statistics.quantiles(samples, n=20, method="inclusive")[-1] * 1e3


def time_steps(sandbox: str, trajectory_dir: str | None = None) -> list[float]:
    env = researchgym.make(TASK, sandbox=sandbox, limits=LIMITS, trajectory_dir=trajectory_dir)
    try:
        env.reset(seed=0)
        observation = env.step("echo hi")[0]
        assert observation.startswith("hi\n"), repr(observation)  # then the step footer
        for _ in range(WARMUP):
            env.step("echo hi")
        samples = []
        for _ in range(STEPS):
            started = time.perf_counter()
            env.step("echo hi")
            samples.append(time.perf_counter() - started)
        return samples
    finally:
        env.close()


def time_resets(sandbox: str) -> list[float]:
    env = researchgym.make(TASK, sandbox=sandbox, limits=LIMITS)
    try:
        env.reset(seed=0)  # warm-up
        samples = []
        for seed in range(1, RESETS + 1):
            started = time.perf_counter()
            env.reset(seed=seed)
            samples.append(time.perf_counter() - started)
        return samples
    finally:
        env.close()


def time_stateless_bwrap() -> list[float]:
    with tempfile.TemporaryDirectory(prefix="rg-bench-ws-") as workspace:
        box = BwrapSandbox(SandboxSpec(workspace=Path(workspace)))  # keep alive: it owns the /etc files
        argv = box.argv()
        assert argv[-len(BASH) :] == BASH, argv[-len(BASH) :]
        argv = argv[: -len(BASH)] + ["/bin/true"]
        subprocess.run(argv, check=True)  # warm-up
        samples = []
        for _ in range(SPAWNS):
            started = time.perf_counter()
            subprocess.run(argv, check=True)
            samples.append(time.perf_counter() - started)
        return samples


def verdict(value: float, target: float) -> str:
    return f"<= {target:g} ms  {'PASS' if value <= target else 'MISS'}"


def main() -> None:
    print(
        f"researchgym {researchgym.__version__} step overhead: task {TASK}, python {platform.python_version()}, "
        f"{os.cpu_count()} cpus, kernel {platform.release()}"
    )
    rows: list[tuple[str, float, float, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LocalSandboxWarning)
        steps = {}
        for sandbox in ("bwrap", "local"):
            steps[sandbox] = p50_p95(time_steps(sandbox))
            with tempfile.TemporaryDirectory(prefix="rg-bench-traj-") as trajectories:
                steps[sandbox, "traj"] = p50_p95(time_steps(sandbox, trajectories))
        stateless = p50_p95(time_stateless_bwrap())
        resets = {sandbox: p50_p95(time_resets(sandbox)) for sandbox in ("bwrap", "local")}

    for sandbox in ("bwrap", "local"):
        target = verdict(steps[sandbox][0], STEP_TARGET_MS) if sandbox == "bwrap" else ""
        rows.append((f"step, {sandbox}", *steps[sandbox], target))
        rows.append((f"step, {sandbox}, with trajectory", *steps[sandbox, "traj"], ""))
    rows.append(("stateless: fresh bwrap /bin/true", *stateless, ""))
    for sandbox in ("bwrap", "local"):
        rows.append((f"reset, {sandbox}", *resets[sandbox], verdict(resets[sandbox][0], RESET_TARGET_MS)))

    print(f"\n{'measurement':<36} {'p50 ms':>9} {'p95 ms':>9}  target")
    print("-" * 72)
    for name, p50, p95, target in rows:
        print(f"{name:<36} {p50:>9.3f} {p95:>9.3f}  {target}".rstrip())
    print("-" * 72)
    print(f"stateless bwrap p50 / persistent bwrap step p50 = {stateless[0] / steps['bwrap'][0]:.1f}x")
    print(f"({STEPS} steps after {WARMUP} warm-up; {SPAWNS} bwrap spawns; {RESETS} resets per sandbox)")


if __name__ == "__main__":
    main()
