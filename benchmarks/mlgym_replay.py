"""Do MLGym's recorded actions behave the same in researchgym's agent interface?

    python benchmarks/mlgym_replay.py [/tmp/mlgym] [--per-task N] [--timeout 60] [--run-validate]
                                      [--tasks battleOfSexes prisonersDilemma blotto 3SATTime
                                               regressionKaggleHousePrice]

MLGym (facebookresearch/MLGym) publishes its agents' trajectories under
trajectories/mlgym_bench_v0/<model>__<task>__.../<task>.traj. For each trajectory of the chosen
tasks (the first N per task, in name order, with --per-task), this script starts a real
researchgym episode (bubblewrap) for the same task, replaces its workspace's files with MLGym's
starter files for the task (the `starter_code` of configs/tasks/<task>.yaml, each in the version
the trajectory shows, see setup_workspace; the evaluation files read-only where MLGym makes them
so; the task's data mount stays), and replays every recorded action, in order, with env.step.

The rule: an action behaves the same when

  1. its outcome is the same: success or failure. MLGym's outcome is read from its recorded
     observation: an edit or insert succeeded iff the observation says "File updated" (and not
     "Permission denied": MLGym's editor reports success after failing to write a read-only
     file, which it leaves unchanged); any other command failed iff a line of its observation
     starts with "Usage", "Error", "No file open" or "File ... not found", or the observation
     says "Malformed edit command", "command not found", "No such file or directory",
     "Traceback (most recent call last)", "EXECUTION TIMED OUT", "syntax error near unexpected
     token", "syntax error: unexpected end of file" or "The file is larger than 20000
     characters". Ours is read the same way from our observation, except that for the
     interface's own commands (open, goto, scroll_up/down, create, edit, insert, search_file,
     search_dir, find_file) our exit code decides (0 is success), and a command that timed out
     here failed;
  2. and, where MLGym's observation of a success shows a file window ("[File: PATH (N lines
     total)]" and numbered lines "K:text"), our copy of that file has N lines too and, at each
     shown line number K, the same text. (Files under data/ are left out: they are the task's
     data set, which researchgym prepares itself, with its own splits.)

`validate` is compared only with --run-validate (it runs the task's evaluator: seconds per call);
otherwise it and `submit` (which ends the episode; the replay stops there) are counted apart, as
are MLGym's exit_* pseudo-actions (its harness ending the episode; the replay stops there too).
Differences are grouped by command and cause, most frequent first, with one example each.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

import yaml

import researchgym

TASKS = ["battleOfSexes", "prisonersDilemma", "blotto", "3SATTime", "regressionKaggleHousePrice"]
ACI = {"open", "goto", "scroll_up", "scroll_down", "create", "edit", "insert", "search_file", "search_dir", "find_file"}
EXITS = {"exit_context", "exit_cost", "exit_error", "exit_format", "exit_api", "exit_forfeit", "skip"}
WORKSPACE = "/home/agent/workspace"
_FAIL_LINE = re.compile(r"^\s*(Usage|Error|No file open|File .* not found$)", re.MULTILINE)
_FAIL_TEXT = (
    "Malformed edit command",
    "command not found",
    "No such file or directory",
    "Traceback (most recent call last)",
    "EXECUTION TIMED OUT",
    "syntax error near unexpected token",
    "syntax error: unexpected end of file",
    "The file is larger than 20000 characters",
)
_HEADER = re.compile(r"^\[File: (?P<path>.+) \((?P<total>\d+) lines total\)\]$", re.MULTILINE)
_NUMBERED = re.compile(r"^\s*(\d+):(.*)$")


def command_name(action: str) -> str:
    words = action.strip().split()
    return words[0] if words else ""


def text_outcome(name: str, observation: str) -> bool:
    """Success (True) or failure, read from an observation's text."""
    if name in {"edit", "insert"}:  # MLGym says "File updated" even when it could not write
        return "File updated" in observation and "Permission denied" not in observation
    if _FAIL_LINE.search(observation):
        return False
    return not any(text in observation for text in _FAIL_TEXT)


def shown_window(observation: str) -> tuple[str, int, dict[int, str]] | None:
    """The file window an observation shows: (path, total lines, {line: text}); the last one."""
    headers = list(_HEADER.finditer(observation))
    if not headers:
        return None
    header = headers[-1]
    shown: dict[int, str] = {}
    for line in observation[header.end() :].split("\n")[1:]:
        match = _NUMBERED.match(line)
        if match:
            shown[int(match.group(1))] = match.group(2)
        elif line.startswith("(") and ("more lines" in line or line.startswith("(")):
            continue
        elif shown:
            break
    return header.group("path"), int(header.group("total")), shown


def compare_file(env, window: tuple[str, int, dict[int, str]]) -> str | None:
    """None when our copy of the file matches what MLGym showed, else what differs."""
    path, total, shown = window
    if not path.startswith(WORKSPACE + "/") or path.startswith(WORKSPACE + "/data/"):
        return None  # outside the workspace, or the task's data (researchgym builds its own)
    ours = env.workspace / path[len(WORKSPACE) + 1 :]
    try:
        data = ours.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "file missing here"
    lines = data.split("\n")
    if data.endswith("\n"):
        lines.pop()
    if not data:
        lines = []
    if len(lines) != total:
        return f"line count {len(lines)} here, {total} in MLGym"
    for number, text in shown.items():
        if number > len(lines) or lines[number - 1].rstrip("\r") != text.rstrip("\r"):
            return f"line {number} differs"
    return None


def without_header(text: str) -> str:
    """A starter file as it was before MLGym's release added a copyright docstring on top
    (three lines, and the blank line after them where there is one)."""
    lines = text.split("\n")
    if len(lines) > 3 and lines[0] == '"""' and lines[1].startswith("Copyright (c) Meta") and lines[2] == '"""':
        lines = lines[4:] if len(lines) > 4 and lines[3] == "" else lines[3:]
    return "\n".join(lines)


def recorded_starters(steps: list[dict]) -> dict[str, str]:
    """The starter files a trajectory saw, where it shows them whole: its first look at each
    file (an `open` showing every line, before the trajectory changed anything) -> the text."""
    found: dict[str, str] = {}
    for step in steps:
        name = command_name(str(step.get("action") or ""))
        if name not in {"open", "goto", "scroll_up", "scroll_down"}:
            if name in {"edit", "insert", "create", "python", "mv", "cp", "rm", "sed"}:
                break
            continue
        window = shown_window(str(step.get("observation") or ""))
        if window is None:
            continue
        path, total, shown = window
        rel = path[len(WORKSPACE) + 1 :] if path.startswith(WORKSPACE + "/") else None
        if rel and rel not in found and total > 0 and sorted(shown) == list(range(1, total + 1)):
            found[rel] = "\n".join(shown[i] for i in range(1, total + 1)) + "\n"
    return found


def setup_workspace(env, mlgym: Path, task: str, steps: list[dict] | None = None) -> None:
    """Our task's files out, MLGym's starter files in (the data mount stays).

    The starter files changed while MLGym's trajectories were recorded (the release added
    copyright headers, and some files changed more), so each file is the version the
    trajectory itself shows in full before it edits anything, when it does; otherwise the
    released file, without its header when the trajectory never shows one."""
    steps = steps or []
    recorded = recorded_starters(steps)
    released = "Copyright (c) Meta Platforms" in json.dumps([s.get("observation") for s in steps])
    config = yaml.safe_load((mlgym / "configs" / "tasks" / f"{task}.yaml").read_text())
    for item in env.workspace.iterdir():
        if item.name == "data":
            continue
        if item.is_dir() and not item.is_symlink():
            for root, dirs, files in os.walk(item):
                for name in dirs + files:
                    os.chmod(os.path.join(root, name), 0o700)
            shutil.rmtree(item)
        else:
            item.chmod(0o600)
            item.unlink()
    read_only = set(config.get("evaluation_paths") or []) if config.get("evaluation_read_only") else set()
    for starter in config.get("starter_code") or []:
        source = mlgym / starter
        target = env.workspace / source.name
        if source.is_dir():
            shutil.copytree(source, target)
            continue
        shutil.copy2(source, target)
        text = source.read_text()
        if source.name in recorded:
            final_newline = text.endswith("\n")
            target.write_text(recorded[source.name] if final_newline else recorded[source.name][:-1])
        elif not released and source.suffix == ".py":
            target.write_text(without_header(text))
        if source.name in read_only:
            target.chmod(0o555)


def replay(mlgym: Path, traj: Path, task: str, timeout: int, run_validate: bool, tally, causes, counted) -> None:
    data = json.loads(traj.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = researchgym.make(
            task,
            footer=False,
            window=100,
            limits={"max_steps": 100_000, "command_timeout_s": timeout, "training_timeout_s": timeout},
        )
        env.reset(seed=0)
    try:
        setup_workspace(env, mlgym, task, data["trajectory"])
        for index, step in enumerate(data["trajectory"]):
            action = str(step.get("action") or "").strip()
            name = command_name(action)
            if not action or action in EXITS:
                counted[task]["exit (not run)"] += 1
                break
            if name == "submit":
                counted[task]["submit (not run)"] += 1
                break
            if name == "validate" and not run_validate:
                counted[task]["validate (not run)"] += 1
                continue
            observation, _, terminated, truncated, info = env.step(action)
            theirs = text_outcome(name, str(step.get("observation") or ""))
            if info.get("exit_code") is None and "timed out" in observation.lower():
                ours = False
            elif name in ACI:
                ours = info.get("exit_code") == 0 and (name not in {"edit", "insert"} or "File updated" in observation)
            elif name == "validate":
                scored = env.scores[-1] if env.scores and env.scores[-1]["step"] == env.steps else {}
                ours = (scored.get("validation") or {}).get("value") is not None
            else:
                ours = text_outcome(name, observation)
            reason = None
            if theirs != ours:
                reason = f"MLGym {'succeeded' if theirs else 'failed'}, here {'succeeded' if ours else 'failed'}"
                if name not in ACI and not ours:
                    reason += f" ({_last_error(observation)})"
            elif theirs:
                window = shown_window(str(step.get("observation") or ""))
                if window is not None and name in ACI:
                    differs = compare_file(env, window)
                    if differs:
                        reason = f"file differs ({differs.split(' here')[0].split(' differs')[0]})"
            tally[task][reason is None] += 1
            if name in ACI or name == "validate":
                tally[task]["interface", reason is None] += 1
            if reason:
                key = (name, reason)
                if key not in causes:
                    causes[key] = [
                        0,
                        f"{traj.parent.name} step {index}: {action.splitlines()[0][:80]!r} -> "
                        f"{observation.strip().splitlines()[0][:100] if observation.strip() else ''!r}",
                    ]
                causes[key][0] += 1
            if terminated or truncated:
                break
    finally:
        env.close()


def _last_error(observation: str) -> str:
    """What a failed shell command's output ends with, numbers blanked, to group causes by."""
    if "timed out" in observation.lower():
        return "timed out here"
    lines = [line.strip() for line in observation.strip().splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if "Error" in line or "error" in line), lines[-1] if lines else "")
    return re.sub(r"\d+", "N", last)[:90]


def _ratio(counts: collections.Counter, interface: bool) -> str:
    same, different = (
        (counts["interface", True], counts["interface", False]) if interface else (counts[True], counts[False])
    )
    return f"{same}/{same + different} = {same / max(same + different, 1):.2%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mlgym", nargs="?", default="/tmp/mlgym", help="a checkout of facebookresearch/MLGym")
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--per-task", type=int, default=None, help="replay only the first N trajectories per task")
    parser.add_argument("--timeout", type=int, default=60, help="seconds each command may run (training runs too)")
    parser.add_argument("--run-validate", action="store_true", help="also run and compare `validate`")
    args = parser.parse_args()
    mlgym = Path(args.mlgym)
    root = mlgym / "trajectories" / "mlgym_bench_v0"
    tally: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    counted: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    causes: dict[tuple[str, str], list] = {}
    started = time.perf_counter()
    for task in args.tasks:
        runs = sorted(p for p in root.glob(f"*__{task}__*/{task}.traj"))
        if args.per_task is not None:
            runs = runs[: args.per_task]
        for number, traj in enumerate(runs, 1):
            replay(mlgym, traj, task, args.timeout, args.run_validate, tally, causes, counted)
            print(
                f"  {task}: {number}/{len(runs)} trajectories, {sum(tally[task].values())} actions "
                f"({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
            )
    print(f"\nMLGym actions replayed in researchgym ({time.perf_counter() - started:.0f} s)\n")
    print(f"{'task':<28}{'interface commands':>26}{'all actions run':>26}   not run")
    total = collections.Counter()
    for task in args.tasks:
        total.update(tally[task])
        skipped = ", ".join(f"{k}: {v}" for k, v in sorted(counted[task].items()))
        print(f"{task:<28}{_ratio(tally[task], True):>26}{_ratio(tally[task], False):>26}   {skipped}")
    print(f"{'overall':<28}{_ratio(total, True):>26}{_ratio(total, False):>26}")
    if causes:
        print("\nDifferences, most frequent first:")
        for (name, reason), (count, example) in sorted(causes.items(), key=lambda kv: -kv[1][0])[:15]:
            print(f"{count:>5}  {name}: {reason}\n       e.g. {example}")


if __name__ == "__main__":
    main()
