"""Disk quotas on every host folder a sandbox can write, watched during and between commands.

The workspace is a host folder (the host reads artefacts from it), so no filesystem limit
applies to it; without a quota one command could fill the host's disk for every episode on it.
What is watched (`quota_areas`), each area against its own limits:

- **the workspace**, with any writable mount (`Mount(read_only=False)`) counted with it:
  `Limits.max_workspace_mb` / `Limits.max_workspace_files`;
- **the tools' state folder** (`SandboxSpec.state_dir`, `/run/researchgym` inside bubblewrap),
  which the agent can write as well: a separate small cap, `STATE_MAX_MB` (64 MiB) and
  `STATE_MAX_FILES` (10,000 entries). The tools keep a few KiB there, so the cap never binds a
  legitimate episode; it applies whenever there is a state folder, whatever the workspace limits.

Usage is counted by allocated blocks (`st_blocks * 512`), never by apparent size: a sparse file
costs what it holds (`truncate -s 10G` costs nothing; writing 10 GB costs 10 GB). Links are not
followed.

One thread per sandbox rescans the areas every half second, or ten times as long as the last
scan took (so a huge tree costs at most a tenth of a core), for the sandbox's whole life:

- **during a command**, usage over an area's quota that has grown since the command began stops
  the command like a timeout; when it ends, every other process of the sandbox (background jobs,
  older ones included) is killed too;
- **between commands**, a background job left running can still write. Usage over a quota that
  has grown since the last command ended kills every process of the sandbox but its shell, and
  the next command's result carries a note saying so. Should usage grow again before any
  command runs, the writer is the shell itself (a function run after the end-of-command marker,
  say): the shell is killed as well, and the next command starts a new one.

Shrinking never trips a quota: deleting files to get back under it always works. A command costs
two lock round-trips and one scan at its end (a thread per command cost ~0.4 ms a step); the
watcher is never woken by a command's start or end.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from researchgym.sandbox.base import SandboxSpec

POLL_S = 0.5
#: The tools' state folder's cap: it legitimately holds a few KiB (the open file, the window).
STATE_MAX_MB = 64
STATE_MAX_FILES = 10_000


@dataclass
class Usage:
    bytes: int = 0
    files: int = 0

    def over(self, max_bytes: int | None, max_files: int | None) -> bool:
        return (max_bytes is not None and self.bytes > max_bytes) or (max_files is not None and self.files > max_files)

    def grown_since(self, other: Usage) -> bool:
        return self.bytes > other.bytes or self.files > other.files


def usage(root: Path) -> Usage:
    """Disk usage (allocated blocks, so a sparse file counts what it holds) and entries under
    `root`, without following links. A `root` that is a file counts as itself."""
    found = Usage()
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    found.files += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    found.bytes += getattr(info, "st_blocks", 0) * 512
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(entry.path)
        except NotADirectoryError:
            try:
                info = os.lstat(root)
            except OSError:
                continue
            found.files += 1
            found.bytes += getattr(info, "st_blocks", 0) * 512
        except OSError:
            continue
    return found


@dataclass
class Area:
    """Host folders counted together against one quota."""

    name: str  # as the agent knows it, for the note
    roots: list[Path]
    max_mb: int | None
    max_files: int | None
    max_bytes: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.max_bytes = self.max_mb << 20 if self.max_mb else None

    def usage(self) -> Usage:
        if len(self.roots) == 1:
            return usage(self.roots[0])
        total = Usage()
        for root in self.roots:
            part = usage(root)
            total.bytes += part.bytes
            total.files += part.files
        return total

    def limits(self) -> str:
        parts = []
        if self.max_bytes is not None:
            parts.append(f"{self.max_mb} MiB")
        if self.max_files is not None:
            parts.append(f"{self.max_files} files")
        return " / ".join(parts)


def _inside(path: Path, folders: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == folder or resolved.is_relative_to(folder) for folder in folders)


def quota_areas(spec: SandboxSpec) -> list[Area]:
    """Every host folder the sandbox can write, grouped by the quota that applies to it."""
    areas = []
    limits = spec.limits
    if limits.max_workspace_mb or limits.max_workspace_files:
        roots = [spec.workspace]
        for mount in spec.mounts:
            if not mount.read_only and not _inside(mount.source, [root.resolve() for root in roots]):
                roots.append(mount.source)
        areas.append(Area("the workspace", roots, limits.max_workspace_mb, limits.max_workspace_files))
    if spec.state_dir is not None and not _inside(spec.state_dir, [spec.workspace.resolve()]):
        areas.append(
            Area("the tools' state folder ($RESEARCHGYM_STATE_DIR)", [spec.state_dir], STATE_MAX_MB, STATE_MAX_FILES)
        )
    return areas


Scan = list[Usage]  # one per area, in order


class QuotaWatch:
    """One per sandbox: a thread that rescans `areas` for the sandbox's whole life.

    `stop()` is called (from the thread) to stop a running command; `kill(shell_too)` kills every
    process of the sandbox but its shell (`shell_too=False`) or all of them, from the thread
    between commands and from `watching()`'s exit (in the caller's thread) when the command broke
    the quota. Both are called holding the lock that a command's start and end take, so a clean-up
    between commands never meets a new command and a late stop never reaches the next one.
    """

    def __init__(self, areas: list[Area], stop: Callable[[], object], kill: Callable[[bool], object]) -> None:
        self.areas = areas
        self.stop = stop
        self.kill = kill
        self.tripped: tuple[Area, Usage] | None = None  # during the current or last command
        self._pending: list[str] = []  # notes from between commands, for the next command
        #: What the current or last command's result must tell: kills between it and the command
        #: before, then its own trip.
        self.earlier_notes: list[str] = []
        self.command_notes: list[str] = []
        self._state = threading.Condition()
        self._active = False
        self._closed = False
        self._generation = 0  # bumped when a command starts and ends: a scan across it is void
        self._idle_kills = 0  # kills between commands since the last command
        self._interval = POLL_S
        self._start = self._scan()  # the baseline: "grown" is judged against it
        self._thread = threading.Thread(target=self._watch, daemon=True, name="researchgym-quota")
        self._thread.start()

    def _scan(self) -> Scan:
        return [area.usage() for area in self.areas]

    def _broken(self, now: Scan) -> tuple[Area, Usage] | None:
        for area, used, before in zip(self.areas, now, self._start):
            if used.grown_since(before) and used.over(area.max_bytes, area.max_files):
                return area, used
        return None

    def _watch(self) -> None:
        while True:
            with self._state:
                if not self._closed:
                    self._state.wait(timeout=self._interval)
                if self._closed:
                    return
                active, generation = self._active, self._generation
                if active and self.tripped is not None:
                    continue  # this command is being stopped already
            began = time.perf_counter()
            now = self._scan()
            self._interval = max(POLL_S, 10 * (time.perf_counter() - began))
            with self._state:
                if self._closed:
                    return
                if self._generation != generation:
                    continue  # a command began or ended meanwhile: its own checks judge it
                broken = self._broken(now)
                if broken is None:
                    continue
                if active:
                    self.tripped = broken
                    self.stop()  # under the lock: a late stop must not reach the next command
                else:
                    self._kill_between_commands(*broken)

    def _kill_between_commands(self, area: Area, used: Usage) -> None:
        """Called holding the lock, while no command runs."""
        shell_too = self._idle_kills > 0  # the last kill did not stop the writer: it is the shell
        self._idle_kills += 1
        try:
            self.kill(shell_too)
        except Exception:  # noqa: BLE001 - the watcher must outlive a failed clean-up
            pass
        self._start = self._scan()  # what the killed processes wrote last is not growth
        what = (
            "the shell itself kept writing, so it was killed with every other process of the sandbox"
            if shell_too
            else "every process of the sandbox but its shell (background jobs) was killed"
        )
        self._pending.append(
            f"while no command was running, {area.name} went over its quota ({area.limits()}; "
            f"it holds {used.bytes >> 20} MiB in {used.files} files): {what}. "
            "Delete files to get back under the quota."
        )

    @contextmanager
    def watching(self) -> Iterator[QuotaWatch]:
        with self._state:
            self._generation += 1
            self._active, self.tripped, self._idle_kills = True, None, 0
            self.earlier_notes, self.command_notes, self._pending = self._pending, [], []
        try:
            yield self
        finally:
            with self._state:  # the watcher waits: it must not judge or kill while this ends
                self._active = False
                self._generation += 1
                now = self._scan()  # a command shorter than one interval is checked at its end
                if self.tripped is None:
                    self.tripped = self._broken(now)
                if self.tripped is not None:
                    area, used = self.tripped
                    try:
                        self.kill(False)  # what it, or an older command, left in the background goes too
                    finally:
                        now = self._scan()
                    self.command_notes.append(
                        f"{area.name} went over its quota ({area.limits()}; it holds {used.bytes >> 20} MiB in "
                        f"{used.files} files): the command and every other process of the sandbox (background "
                        "jobs too) were stopped. Delete files to get back under the quota."
                    )
                self._start = now  # the next command, and the time until it, are judged by what they add

    def close(self) -> None:
        with self._state:
            self._closed = True
            self._state.notify_all()
        self._thread.join(timeout=5)

    def note(self) -> str | None:
        """All the current or last command's quota notes, as one text (None when there is none)."""
        notes = self.earlier_notes + self.command_notes
        return "\n".join(notes) if notes else None
