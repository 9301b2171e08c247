"""Reading the host's process table, to find and kill what a sandboxed command left running.

Process groups are compared by their id *inside* the sandbox's pid namespace (the `NSpgid`
line of /proc/PID/status), because that is what the sandboxed shell reports with `jobs -p`.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Set
from dataclasses import dataclass


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int  # in the host's namespace
    ns_pgid: int  # in the innermost pid namespace


def read_stat(pid: int) -> tuple[int, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: fields start after the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[1]), int(fields[2])


def _status_field(pid: int, field: bytes) -> int | None:
    """The innermost-namespace value of an `NSpid:`/`NSpgid:` line of /proc/PID/status."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[-1])
    except OSError:
        return None
    return None


def _ns_pgid(pid: int, fallback: int) -> int:
    value = _status_field(pid, b"NSpgid:")
    return fallback if value is None else value


def descendants(root: int) -> list[Proc]:
    """Every live process below `root` (not `root` itself)."""
    table: dict[int, tuple[int, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                table[int(name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _pgid) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: list[Proc] = []
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        ppid, pgid = table[pid]
        found.append(Proc(pid, ppid, pgid, _ns_pgid(pid, pgid)))
        stack.extend(children.get(pid, []))
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def kill_groups(pgids: set[int]) -> None:
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def kill_below(root: int, keep: set[int], keep_ns_pgids: Set[int] = frozenset(), rounds: int = 200) -> int:
    """Kill every process below `root` except `keep` pids and groups in `keep_ns_pgids`.

    Repeats because a fork bomb keeps forking while it is being killed. Returns how many
    processes were found in the first round.
    """
    first = -1
    for _ in range(rounds):
        victims = [p for p in descendants(root) if p.pid not in keep and p.ns_pgid not in keep_ns_pgids]
        if first < 0:
            first = len(victims)
        if not victims:
            break
        kill_groups({p.pgid for p in victims if p.pgid not in keep})
        kill_all([p.pid for p in victims])
        time.sleep(0.005)
    return max(first, 0)


def ns_pid(pid: int) -> int | None:
    """The pid of host process `pid` in its innermost pid namespace."""
    return _status_field(pid, b"NSpid:")


def _descends_from(pid: int, root: int, depth: int = 4) -> bool:
    for _ in range(depth):
        stat = read_stat(pid)
        if stat is None:
            return False
        pid = stat[0]
        if pid == root:
            return True
    return False


def find_host_pid(root: int, inner_pid: int, window: int = 512) -> int | None:
    """The host pid of the process at or below `root` whose namespaced pid is `inner_pid`.

    Pids are handed out in order, so the shell was almost always forked within a few hundred
    pids after its launcher: those are tried first, which avoids reading the whole process table
    (the costly part of starting a sandbox when dozens run at once).
    """
    if ns_pid(root) == inner_pid:
        return root
    for candidate in range(root + 1, root + window):
        if ns_pid(candidate) == inner_pid and _descends_from(candidate, root):
            return candidate
    for proc in descendants(root):
        if ns_pid(proc.pid) == inner_pid:
            return proc.pid
    return None
