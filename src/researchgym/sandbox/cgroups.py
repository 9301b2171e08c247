"""Per-sandbox cgroups: the only reliable process and memory cap when the host user is root.

RLIMIT_NPROC does not bind processes whose host uid is root (which a bwrap sandbox started by
root is, whatever uid it shows inside), so a fork bomb would take the machine. A cgroup's
`pids.max` binds everyone. cgroup v2 is used when it is mounted with the pids controller,
otherwise the v1 `pids`, `memory` and `cpu` hierarchies. Without write access to either, the
caller falls back to rlimits.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PREFIX = "researchgym-"
_STALE_AFTER_S = 600


_last_sweep = [0.0]


def remove_stale(every_s: float = 60.0) -> None:
    """Remove empty groups left by crashed runs (a group still in use is busy and stays).
    At most once a minute per process: with dozens of sandboxes starting, listing the cgroup
    folders each time is measurable."""
    now = time.time()
    if now - _last_sweep[0] < every_s:
        return
    _last_sweep[0] = now
    for base in (ROOT, ROOT / "pids", ROOT / "memory", ROOT / "cpu"):
        try:
            entries = [p for p in base.iterdir() if p.name.startswith(PREFIX)]
        except OSError:
            continue
        for path in entries:
            try:
                if now - path.stat().st_mtime > _STALE_AFTER_S:
                    path.rmdir()
            except OSError:
                pass


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


@dataclass
class SandboxCgroup:
    """One group per controller; the sandbox's first process joins all of them."""

    dirs: dict[str, Path] = field(default_factory=dict)
    #: The limits actually written ("pids", "memory", "cpu"); the rest fall back to rlimits.
    applied: set[str] = field(default_factory=set)
    _fds: dict[str, int] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, memory_mb: int | None, max_processes: int | None, cpus: float | None) -> SandboxCgroup | None:
        name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
        remove_stale()
        group = cls()
        try:
            v2 = ROOT / "cgroup.controllers"
            if v2.exists() and "pids" in v2.read_text().split() and _writable(ROOT):
                path = ROOT / name
                path.mkdir()
                group.dirs["v2"] = path
                if max_processes:
                    (path / "pids.max").write_text(str(max_processes))
                    group.applied.add("pids")
                if memory_mb and (path / "memory.max").exists():
                    (path / "memory.max").write_text(str(memory_mb << 20))
                    if (path / "memory.swap.max").exists():
                        (path / "memory.swap.max").write_text("0")
                    group.applied.add("memory")
                if cpus and (path / "cpu.max").exists():
                    (path / "cpu.max").write_text(f"{int(cpus * 100_000)} 100000")
                    group.applied.add("cpu")
                return group
            if not _writable(ROOT / "pids"):
                return None
            path = ROOT / "pids" / name
            path.mkdir()  # the one that matters: without it a root fork bomb is unbounded
            group.dirs["pids"] = path
            if max_processes:
                (path / "pids.max").write_text(str(max_processes))
                group.applied.add("pids")
            settings = {
                "memory": [("memory.limit_in_bytes", memory_mb << 20)] if memory_mb else [],
                "cpu": [("cpu.cfs_period_us", 100_000), ("cpu.cfs_quota_us", int(cpus * 100_000))] if cpus else [],
            }
            for controller, values in settings.items():
                if not values or not _writable(ROOT / controller):
                    continue
                try:  # best effort: rlimits stand in for a controller that cannot be used
                    path = ROOT / controller / name
                    path.mkdir()
                    group.dirs[controller] = path
                    for file, value in values:
                        (path / file).write_text(str(value))
                    group.applied.add(controller)
                except OSError:
                    pass
            return group
        except OSError:
            group.remove()
            return None

    def touch(self) -> None:
        """Mark the groups as in use, so another process's stale sweep leaves them alone
        while they are briefly empty (a shell restart)."""
        for path in self.dirs.values():
            try:
                os.utime(path)
            except OSError:
                pass

    def join(self) -> None:
        """Move the calling process into every group (used in the child before exec)."""
        pid = str(os.getpid())
        for path in self.dirs.values():
            with open(path / "cgroup.procs", "w") as handle:
                handle.write(pid)

    def pids(self) -> tuple[int, int] | None:
        """(current, max) number of processes, or None if no pids controller."""
        path = self.dirs.get("v2") or self.dirs.get("pids")
        if path is None:
            return None
        try:
            current = int((path / "pids.current").read_text())
            limit = (path / "pids.max").read_text().strip()
        except (OSError, ValueError):
            return None
        return current, (int(limit) if limit.isdigit() else 1 << 30)

    def _counter(self, path: Path | None, name: str, key: bytes) -> int:
        """A `key value` line of a cgroup file, read through a kept-open descriptor (these are
        read twice per step, so the open is paid once)."""
        if path is None:
            return 0
        fd = self._fds.get(name)
        try:
            if fd is None:
                fd = self._fds[name] = os.open(path / name, os.O_RDONLY)
            for line in os.pread(fd, 4096, 0).splitlines():
                field, _, value = line.partition(b" ")
                if field == key:
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def pids_refused(self) -> int:
        """How many forks the pids limit has refused so far (the `max` line of pids.events)."""
        return self._counter(self.dirs.get("v2") or self.dirs.get("pids"), "pids.events", b"max")

    def oom_kills(self) -> int:
        """How many processes the kernel has killed for exceeding the memory limit."""
        if "v2" in self.dirs:
            return self._counter(self.dirs["v2"], "memory.events", b"oom_kill")
        return self._counter(self.dirs.get("memory"), "memory.oom_control", b"oom_kill")

    def members(self) -> list[int]:
        """Host pids of every process in the group, wherever they were re-parented to."""
        path = self.dirs.get("v2") or self.dirs.get("pids") or next(iter(self.dirs.values()), None)
        if path is None:
            return []
        try:
            return [int(x) for x in (path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self) -> None:
        """SIGKILL every member, again and again until none is left (a fork bomb keeps forking)."""
        for _ in range(200):
            members = self.members()
            if not members:
                return
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.005)

    def remove(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self.kill_all()
        for path in self.dirs.values():
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.dirs.clear()
