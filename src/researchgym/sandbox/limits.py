"""Applying `Limits` to a process tree: a cgroup where the host allows it, rlimits always."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable

from researchgym.sandbox.base import Limits
from researchgym.sandbox.cgroups import SandboxCgroup


def _user_process_count() -> int:
    uid = os.getuid()
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def make_preexec(limits: Limits, cgroup: SandboxCgroup | None) -> Callable[[], None]:
    """Build the function run in the child between fork and exec.

    RLIMIT_NPROC counts every process of the host user, so it is set to what the user already
    runs plus the sandbox's allowance (it does not bind root at all: the cgroup does that).
    RLIMIT_AS stands in for a memory cgroup when there is none.
    """
    settings: list[tuple[int, int]] = [(resource.RLIMIT_CORE, 0)]
    applied = cgroup.applied if cgroup is not None else set()
    has_pids, has_memory = "pids" in applied, "memory" in applied
    if limits.max_processes and not has_pids:
        settings.append((resource.RLIMIT_NPROC, _user_process_count() + limits.max_processes))
    if limits.memory_mb and not has_memory:
        settings.append((resource.RLIMIT_AS, limits.memory_mb << 20))
    if limits.max_file_size_mb:
        settings.append((resource.RLIMIT_FSIZE, limits.max_file_size_mb << 20))
    if limits.cpu_seconds:
        settings.append((resource.RLIMIT_CPU, limits.cpu_seconds))
    if limits.max_open_files:
        settings.append((resource.RLIMIT_NOFILE, limits.max_open_files))
    affinity: set[int] | None = None
    if limits.cpus and "cpu" not in applied:
        available = sorted(os.sched_getaffinity(0))
        affinity = set(available[: max(1, int(round(limits.cpus)))])

    def preexec() -> None:  # the session is Popen's start_new_session
        if cgroup is not None:
            cgroup.join()
        for which, value in settings:
            _soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))  # hard = soft: commands cannot raise it
        if affinity:
            os.sched_setaffinity(0, affinity)

    return preexec


def launch_prefix(limits: Limits, cgroup: SandboxCgroup | None) -> tuple[list[str], Callable[[], None] | None]:
    """How to start a sandbox's first process with its limits: a bash prefix that joins the
    cgroup, sets the rlimits (hard = soft) and execs the launcher. Python can then start it with
    vfork instead of forking the whole interpreter (which a preexec function forces, and which
    costs milliseconds per sandbox in a process running dozens of them). Falls back to a preexec
    function only for CPU affinity, which bash cannot set."""
    if limits.cpus and (cgroup is None or "cpu" not in cgroup.applied):
        return [], make_preexec(limits, cgroup)
    applied = cgroup.applied if cgroup is not None else set()
    lines = []
    if cgroup is not None:
        lines += [f"echo $$ > {path / 'cgroup.procs'} || exit 111" for path in cgroup.dirs.values()]
    lines.append("ulimit -c 0")
    if limits.max_processes and "pids" not in applied:
        lines.append(f"ulimit -u {_user_process_count() + limits.max_processes}")
    if limits.memory_mb and "memory" not in applied:
        lines.append(f"ulimit -v {limits.memory_mb << 10}")  # KiB
    if limits.max_file_size_mb:
        lines.append(f"ulimit -f {limits.max_file_size_mb << 10}")  # 1 KiB blocks (bash)
    if limits.cpu_seconds:
        lines.append(f"ulimit -t {limits.cpu_seconds}")
    if limits.max_open_files:
        lines.append(f"ulimit -n {limits.max_open_files}")
    lines.append('exec "$@"')
    return ["/bin/bash", "--noprofile", "--norc", "-c", "; ".join(lines), "researchgym-launch"], None


def runaway_check(cgroup: SandboxCgroup | None) -> Callable[[], bool]:
    """True when the process limit refused a fork since the last call (a fork bomb, say)."""
    seen = [cgroup.pids_refused() if cgroup else 0]

    def check() -> bool:
        if cgroup is None:
            return False
        refused = cgroup.pids_refused()
        if refused > seen[0]:
            seen[0] = refused
            return True
        return False

    return check
