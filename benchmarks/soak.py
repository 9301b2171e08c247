"""Soak: many concurrent episodes of many steps, then a look for anything left behind.

Runs WAVES waves of N concurrent episodes of S steps each (default 2 x 64 x 100) through the
react agent with a scripted model, in bwrap sandboxes, and samples this process's open file
descriptors, threads and resident memory, its child processes, the sandboxes' temporary
folders and cgroups. After each wave everything must be back where it started; memory must not
grow from the first wave to the second. Exit status 1 on any leak.

    python benchmarks/soak.py [--episodes 64] [--steps 100] [--waves 2]
"""

from __future__ import annotations

import argparse
import gc
import glob
import os
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from researchgym.agents.react import ReactAgent
from researchgym.models.scripted import ScriptedModel
from researchgym.runs.episode import run_episode
from researchgym.wrappers import make_env

ACTIONS = [
    "echo step {n}",
    "ls -la",
    "python3 -c 'print(sum(range(1000)))'",
    "cat notes.txt 2>/dev/null | wc -l",
    "echo {n} >> notes.txt",
    "sleep 0.05 &",
    "true",
]


def soak_task(root: Path, steps: int) -> Path:
    folder = root / "soak"
    (folder / "eval").mkdir(parents=True)
    (folder / "eval" / "evaluate.py").write_text("print('{\"score\": 1.0}')\n")
    (folder / "task.yaml").write_text(
        textwrap.dedent(f"""\
        id: soak
        name: Soak
        description: Take many small steps, then submit.
        evaluation: {{command: python3 -S evaluate.py, files: [{{src: eval/evaluate.py}}], has_test_split: false}}
        metric: {{name: score, direction: maximize}}
        baseline: {{scores: [{{score: 1.0}}]}}
        limits: {{max_steps: {steps + 5}}}
        """)
    )
    return folder


def replies(steps: int) -> list[str]:
    out = []
    for n in range(steps - 1):
        command = ACTIONS[n % len(ACTIONS)].format(n=n)
        out.append(f"DISCUSSION\nstep {n}\n\n```\n{command}\n```\n")
    out.append("DISCUSSION\ndone\n\n```\nsubmit\n```\n")
    return out


def snapshot() -> dict[str, float]:
    gc.collect()
    me = os.getpid()
    children = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children += int(fields[1]) == me
    with open(f"/proc/{me}/status") as handle:
        status = dict(line.split(":", 1) for line in handle if ":" in line)
    return {
        "fds": len(os.listdir(f"/proc/{me}/fd")),
        "threads": threading.active_count(),
        "rss_mb": int(status["VmRSS"].split()[0]) / 1024,
        "children": children,
        "tmp_dirs": len(glob.glob(os.path.join(tempfile.gettempdir(), "researchgym-*"))),
        "cgroups": len(glob.glob("/sys/fs/cgroup/**/researchgym-*", recursive=True)),
    }


def wave(task: Path, episodes: int, steps: int, traj: Path) -> tuple[float, list[str]]:
    def one(index: int) -> str:
        env = make_env(str(task / "task.yaml"), trajectory_dir=traj, footer=True)
        try:
            result = run_episode(env, ReactAgent(ScriptedModel(replies(steps))), seed=index)
        finally:
            env.close()
        return f"{result.exit_status} {result.steps}"

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=episodes) as pool:
        outcomes = list(pool.map(one, range(episodes)))
    return time.perf_counter() - started, outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--waves", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="soak-"))
    task = soak_task(root, args.steps)
    before = snapshot()
    print(f"soak: {args.waves} waves x {args.episodes} concurrent episodes x {args.steps} steps (bwrap)")
    print(f"before: {before}")
    after_waves = []
    leaks = []
    for number in range(1, args.waves + 1):
        seconds, outcomes = wave(task, args.episodes, args.steps, root / "trajectories")
        time.sleep(1.0)  # let the last close() calls settle
        after = snapshot()
        after_waves.append(after)
        good = sum(o == f"submitted {args.steps}" for o in outcomes)
        steps = args.episodes * args.steps
        print(
            f"wave {number}: {seconds:.1f} s, {steps / seconds:.0f} steps/s, {good}/{args.episodes} episodes "
            f"submitted after {args.steps} steps; after: {after}"
        )
        if good != args.episodes:
            leaks.append(
                f"wave {number}: {args.episodes - good} episodes did not end as scripted: {sorted(set(outcomes))[:3]}"
            )
        for key in ("fds", "threads", "children", "tmp_dirs", "cgroups"):
            if after[key] > before[key]:
                leaks.append(f"wave {number}: {key} {before[key]} -> {after[key]}")
    if len(after_waves) > 1:
        growth = after_waves[-1]["rss_mb"] - after_waves[0]["rss_mb"]
        print(f"resident memory from the first wave to the last: {growth:+.1f} MiB")
        if growth > 50:
            leaks.append(f"resident memory grew {growth:.1f} MiB between waves")
    print(
        "LEAKS: " + "; ".join(leaks)
        if leaks
        else "no leaks: descriptors, threads, processes, temporary folders and cgroups back to where they started"
    )
    return 1 if leaks else 0


if __name__ == "__main__":
    raise SystemExit(main())
