"""Keeping an evaluator's secrets from the agent's code it runs, in the same sandbox.

Shared by the evaluators that run agent code (the game tasks, 3-SAT). They are copied into the
evaluation folder beside evaluate.py (see each task's `evaluation.files`).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal


def take_secrets() -> tuple[str | None, int | None]:
    """The result token and the evaluation seed, read once from the file named by
    RESEARCHGYM_SECRETS_FILE and deleted, so code started later cannot find them. Call it first,
    before anything of the agent's runs. (None, None) when run by hand, outside an evaluation."""
    path = os.environ.pop("RESEARCHGYM_SECRETS_FILE", None)
    if not path:
        return None, None
    try:
        with open(path) as handle:
            secrets = json.load(handle)
    except (OSError, ValueError):
        return None, None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    seed = secrets.get("seed")
    return secrets.get("token"), int(seed) if seed is not None else None


def no_memory_access() -> None:
    """PR_SET_DUMPABLE=0: a same-user process can no longer read our memory or environment."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except OSError:
        pass


def kill_everyone_else() -> int:
    """Kill every process the agent's code may have left; return how many. Only inside a
    bubblewrap pid namespace, which holds nothing but this evaluation; never on a host (the
    `local` sandbox)."""
    try:
        with open("/proc/1/comm") as handle:
            if handle.read().strip() != "bwrap":
                return 0
    except OSError:
        return 0
    spare = {os.getpid()}
    pid = os.getpid()
    while pid > 1:
        with open(f"/proc/{pid}/stat") as handle:
            pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        spare.add(pid)
    killed: set[int] = set()
    for _ in range(100):
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in spare]
        if not others:
            break
        killed.update(others)
        for other in others:
            try:
                os.kill(other, signal.SIGKILL)
            except OSError:
                pass
    return len(killed)
