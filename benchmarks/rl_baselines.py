"""Train each RL task's CPU-budget baseline end to end through the environment and score it.

    python benchmarks/rl_baselines.py [--record] [--keep DIR] [task-id ...]

For each task (default: the three `-cpu` variants): a fresh env, `python src/train.py` in the
sandbox (5 PPO runs), then `validate` and `submit`. Prints the training time, the in-training
returns, both scores and how long `validate` and `submit` took (evaluation must not be the slow
part: together they should take less than the training). With `--record`, writes the test score
(the one agents are compared on) into the task's `task.cpu.yaml` as its baseline; with `--keep
DIR`, copies the trained checkpoints to DIR/<task-id>/ (for benchmarks/rl_evaluation.py
--checkpoints). The figures go in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import time
from pathlib import Path

import researchgym

CPU_TASKS = ["rl-mountain-car-continuous-cpu", "rl-breakout-minatar-cpu", "rl-meta-maze-cpu"]


def run(task_id: str, keep: Path | None) -> dict:
    env = researchgym.make(task_id)
    env.reset(seed=0)
    started = time.perf_counter()
    trained, *_ = env.step("python src/train.py")
    train_s = time.perf_counter() - started
    if keep is not None:
        assert env.workspace is not None
        shutil.copytree(env.workspace / "checkpoints", keep / task_id, dirs_exist_ok=True)
    started = time.perf_counter()
    validated, *_ = env.step("validate")
    validate_s = time.perf_counter() - started
    started = time.perf_counter()
    _, _, _, _, info = env.step("submit")
    submit_s = time.perf_counter() - started
    env.close()
    entry = info["scores"][0]
    if "validation" not in entry or info["exit_status"] != "submitted":
        raise SystemExit(f"{task_id}: training or scoring failed:\n{trained[-3000:]}\n{validated}\n{info['scores']}")
    last_lines = [line for line in trained.splitlines() if line.strip() and not line.startswith("(Current step")][-7:]
    return {
        "task": task_id,
        "train_s": train_s,
        "validate_s": validate_s,
        "submit_s": submit_s,
        "training_tail": "\n".join(last_lines),
        "validation": entry["validation"]["metrics"],
        "test": info["scores"][-1]["test"]["metrics"],
        "spec": env.task,
    }


def record(result: dict) -> None:
    """Write the measured test score into task.cpu.yaml's baseline."""
    spec = result["spec"]
    path = spec.source_dir / "task.cpu.yaml"
    test = result["test"]
    block = (
        f"baseline:\n  scores:  # measured by benchmarks/rl_baselines.py (test seeds, 2 CPU cores, "
        f"training {result['train_s']:.0f} s)\n"
        f"    - Reward Mean: {test['Reward Mean']:.7g}\n      Reward Std: {test['Reward Std']:.7g}\n"
    )
    text = path.read_text()
    new, count = re.subn(r"baseline:\n(?:  .*\n)+", block, text, count=1)
    if count != 1:
        raise SystemExit(f"{path}: no baseline block to replace")
    path.write_text(new)
    print(f"recorded in {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tasks", nargs="*", default=CPU_TASKS)
    parser.add_argument("--record", action="store_true", help="write the test score into task.cpu.yaml")
    parser.add_argument("--keep", type=Path, default=None, help="copy the trained checkpoints to DIR/<task-id>/")
    args = parser.parse_args()
    for task_id in args.tasks:
        result = run(task_id, args.keep)
        validation, test = result["validation"], result["test"]
        print(f"== {task_id}: training {result['train_s']:.0f} s (5 runs)\n{result['training_tail']}")
        print(
            f"validation Reward Mean {validation['Reward Mean']:.4f} (std {validation['Reward Std']:.4f}, "
            f"per checkpoint {validation['checkpoint_means']})"
        )
        print(
            f"test       Reward Mean {test['Reward Mean']:.4f} (std {test['Reward Std']:.4f}, "
            f"per checkpoint {test['checkpoint_means']})"
        )
        evaluation_s = result["validate_s"] + result["submit_s"]
        print(
            f"validate {result['validate_s']:.1f} s + submit {result['submit_s']:.1f} s = {evaluation_s:.1f} s, "
            f"{evaluation_s / result['train_s']:.2f} of the training time",
            flush=True,
        )
        if args.record:
            record(result)


if __name__ == "__main__":
    main()
