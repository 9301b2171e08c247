"""Keeping an evaluator's secrets from the agent's code it runs, in the same sandbox.

Shared by the evaluators that run agent code (the game tasks, 3-SAT). They are copied into the
evaluation folder beside evaluate.py (see each task's `evaluation.files`).
"""

from __future__ import annotations

import ctypes
import os
import signal


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
