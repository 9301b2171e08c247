"""How long the RL evaluation takes, this checkout's evaluator against an older one, same checkpoints.

    python benchmarks/rl_evaluation.py [--against REV] [--repeats 3] [--tasks ...]
                                       [--checkpoints TASK=DIR ...] [--sandbox]

For each task (default: the three `-cpu` variants) the submission is the starter `src/` with 5
checkpoints: freshly initialised networks of the task's own config, or, with
`--checkpoints TASK=DIR`, the `*.pkl` files in DIR (trained ones: their episodes last longer,
so their rollouts run more steps). Each evaluator, this checkout's and the one at `--against`
(read with `git show`, default HEAD), is run by hand on the validation split
(`python evaluate.py ...` in a folder holding the submission and that evaluator's files, so
both run under the same conditions, outside any sandbox), alternately, `--repeats` times; the
script prints the median wall time of each, their ratio, and fails if the two evaluators'
metrics differ in any digit (a faster evaluation must score exactly the same). `--sandbox`
also times this checkout's evaluation through `researchgym.evaluation.evaluate` (two bwrap
sandboxes, as `validate` runs it), `--repeats` rounds of three: with the evaluators' compile
cache off, empty (cold) and holding the programs the cold run kept (warm), each scoring exactly
the same.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import researchgym
from researchgym.tasks.registry import BUILTIN_DIR

REPO = Path(__file__).resolve().parent.parent
TASKS = ["rl-mountain-car-continuous-cpu", "rl-breakout-minatar-cpu", "rl-meta-maze-cpu"]
#: The evaluator's files (task folder relative), as the tasks' evaluation and agent_code list them.
EVALUATOR_FILES = ["_rl/eval/evaluate.py", "_rl/eval/policy_server.py", "_shared/agent_link.py", "_shared/isolation.py"]

INIT = """
import pickle, sys, yaml
import gymnax, jax, jax.numpy as jnp
from gymnax.environments import spaces
sys.path.insert(0, "src")
from networks import make_model
config = yaml.safe_load(open("src/config.yaml"))["train_config"]
env, params = gymnax.make(config["env_name"])
space = env.action_space(params)
continuous = isinstance(space, spaces.Box)
model = make_model(config["network_config"], int(space.shape[0]) if continuous else int(space.n), continuous)
obs = jnp.zeros((1, *env.observation_space(params).shape))
for seed in range(5):
    network = jax.device_get(model.init(jax.random.PRNGKey(seed), obs))
    with open(f"checkpoints/config-42-{seed}.pkl", "wb") as handle:
        pickle.dump({"log_steps": [0], "log_return": [0.0], "network": network,
                     "train_config": config}, handle)
"""


def submission(task_id: str, folder: Path, checkpoints: Path | None) -> list[str]:
    """Fill `folder` with the task's starter src/ and 5 checkpoints; return its evaluation command."""
    task = researchgym.load_task(task_id)
    for item in task.starter_files:
        if item.target.startswith("src/"):
            target = folder / item.target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(task.path(item.src), target)
    (folder / "checkpoints").mkdir()
    if checkpoints is not None:
        for path in sorted(checkpoints.glob("*.pkl")):
            shutil.copyfile(path, folder / "checkpoints" / path.name)
    else:
        subprocess.run([sys.executable, "-c", INIT], cwd=folder, check=True)
    return shlex.split(task.evaluation.command.replace("{split}", "validation"))


def evaluator_files(folder: Path, rev: str | None) -> None:
    """The evaluator's files from this checkout (rev None) or from git revision `rev`."""
    for name in EVALUATOR_FILES:
        source = BUILTIN_DIR / name
        if rev is None:
            (folder / Path(name).name).write_bytes(source.read_bytes())
        else:
            relative = source.relative_to(REPO).as_posix()
            text = subprocess.run(["git", "show", f"{rev}:{relative}"], cwd=REPO, capture_output=True, check=True)
            (folder / Path(name).name).write_bytes(text.stdout)


def run(folder: Path, command: list[str]) -> tuple[float, dict]:
    command = [sys.executable if part == "python" else part for part in command]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"{folder}: {' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return seconds, json.loads(lines[-1])


def measure(task_id: str, against: str, repeats: int, checkpoints: Path | None, sandbox: bool) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "submission"
        base.mkdir()
        command = submission(task_id, base, checkpoints)
        folders = {}
        for label, rev in (("before", against), ("after", None)):
            folders[label] = Path(scratch) / label
            shutil.copytree(base, folders[label])
            evaluator_files(folders[label], rev)
        times: dict[str, list[float]] = {"before": [], "after": []}
        metrics: dict[str, dict] = {}
        for _ in range(repeats):
            for label, folder in folders.items():
                seconds, result = run(folder, command)
                times[label].append(seconds)
                metrics[label] = result
        if metrics["before"] != metrics["after"]:
            raise SystemExit(f"{task_id}: the scores differ:\n before {metrics['before']}\n after  {metrics['after']}")
        row = {
            "task": task_id,
            "trained": checkpoints is not None,
            "metrics": metrics["after"],
            **{label: statistics.median(values) for label, values in times.items()},
        }
        if sandbox:
            row.update(sandboxed(task_id, base, metrics["after"], Path(scratch), repeats))
        return row


def sandboxed(task_id: str, submission_folder: Path, expected: dict, scratch: Path, repeats: int) -> dict[str, float]:
    """This checkout's evaluation through the two bwrap sandboxes (as `validate` runs it), median
    of `repeats` rounds: with the compile cache off, then empty (cold, a fresh folder each round),
    then holding the programs the cold run kept (warm)."""
    import os

    from researchgym.evaluation import evaluate

    task = researchgym.load_task(task_id)
    seconds: dict[str, list[float]] = {"sandbox": [], "cold": [], "warm": []}
    for round_ in range(repeats):
        cache = scratch / f"compile-cache-{round_}"
        for label, setting in (("sandbox", "off"), ("cold", str(cache)), ("warm", str(cache))):
            os.environ["RESEARCHGYM_COMPILE_CACHE"] = setting
            started = time.perf_counter()
            score = evaluate(task, submission_folder, split="validation", seed=0)
            seconds[label].append(time.perf_counter() - started)
            if score.metrics != {**expected, "split": "validation"} and score.metrics != expected:
                raise SystemExit(f"{task_id}: the sandboxed score ({label}) differs: {score.metrics} vs {expected}")
    return {label: statistics.median(values) for label, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", default="HEAD", help="git revision of the evaluator to compare with")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument(
        "--checkpoints",
        action="append",
        default=[],
        metavar="TASK=DIR",
        help="use the *.pkl files in DIR for TASK (repeatable)",
    )
    parser.add_argument("--sandbox", action="store_true", help="also time the evaluation through the bwrap sandboxes")
    args = parser.parse_args()
    trained = dict(item.split("=", 1) for item in args.checkpoints)
    tasks = args.tasks or (list(trained) if trained else TASKS)
    print(f"evaluator at {args.against} (before) and this checkout (after), validation split, median of {args.repeats}")
    print(
        f"{'task':34} {'checkpoints':11} {'before':>8} {'after':>8} {'ratio':>6} "
        f"{'sandbox':>8} {'cold':>8} {'warm':>8}  Reward Mean"
    )
    for task_id in tasks:
        folder = Path(trained[task_id]) if task_id in trained else None
        row = measure(task_id, args.against, args.repeats, folder, args.sandbox)
        sandbox = " ".join(f"{row[k]:7.1f}s" if k in row else "       -" for k in ("sandbox", "cold", "warm"))
        print(
            f"{task_id:34} {'trained' if row['trained'] else 'untrained':11} {row['before']:7.1f}s "
            f"{row['after']:7.1f}s {row['before'] / row['after']:5.2f}x {sandbox}  "
            f"{row['metrics']['Reward Mean']:.6g} (identical)",
            flush=True,
        )


if __name__ == "__main__":
    main()
