"""The workspace's disk quota: bytes on disk and files, watched while a command runs.

The workspace is a host folder (the host reads artefacts from it), so no filesystem limit
applies to it; without a quota one command could fill the host's disk for every episode on it.
A thread rescans the folder while the command runs (every half second, or ten times as long
as a scan took, so a huge tree costs at most a tenth of a core) and, when usage passes the quota and
has grown since the command began, stops the command and its processes. Deleting files to get
back under the quota always works: shrinking never trips it.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from dataclasses import dataclass
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

POLL_S = 0.5


@dataclass
class Usage:
    bytes: int = 0
    files: int = 0

    def over(self, max_bytes: int | None, max_files: int | None) -> bool:
        return (max_bytes is not None and self.bytes > max_bytes) or (max_files is not None and self.files > max_files)


def usage(root: Path) -> Usage:
    """Disk usage (allocated blocks, so a sparse file counts what it holds) and entries under
    `root`, without following links."""
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
        except OSError:
            continue
    return found


class QuotaWatch:
    """One per sandbox: a thread that, while a command runs (`with watch.watching():`), rescans
    `root` and calls `stop()` once if the quota is broken. Idle between commands; a command
    costs two lock round-trips and one scan (a thread per command cost ~0.4 ms a step)."""

    def __init__(self, root: Path, max_mb: int | None, max_files: int | None, stop: Callable[[], object]) -> None:
        self.root = root
        self.max_bytes = max_mb << 20 if max_mb else None
        self.max_files = max_files
        self.stop = stop
        self.tripped: Usage | None = None
        self._state = threading.Condition()
        self._active = False
        self._closed = False
        self._generation = 0
        self._interval = POLL_S
        self._start = usage(root)
        self._thread = threading.Thread(target=self._watch, daemon=True, name="researchgym-quota")
        self._thread.start()

    def _broken(self, now: Usage) -> bool:
        grown = now.bytes > self._start.bytes or now.files > self._start.files
        return grown and now.over(self.max_bytes, self.max_files)

    def _watch(self) -> None:
        while True:
            with self._state:
                while not self._active and not self._closed:
                    self._state.wait()
                if self._closed:
                    return
                generation = self._generation
                self._state.wait(timeout=self._interval)  # a finished command wakes it early
                if self._closed:
                    return
                if not self._active or self._generation != generation or self.tripped is not None:
                    continue
            began = time.perf_counter()
            now = usage(self.root)
            self._interval = max(POLL_S, 10 * (time.perf_counter() - began))
            with self._state:
                trip = self._active and self._generation == generation and self.tripped is None and self._broken(now)
                if trip:
                    self.tripped = now
            if trip:
                self.stop()

    @contextmanager
    def watching(self) -> Iterator["QuotaWatch"]:
        with self._state:
            self._generation += 1
            self._active, self.tripped = True, None
            self._state.notify_all()
        try:
            yield self
        finally:
            with self._state:
                self._active = False
                self._state.notify_all()
            now = usage(self.root)  # a command shorter than one interval is checked at its end
            if self.tripped is None and self._broken(now):
                self.tripped = now
                self.stop()  # what it left running in the background goes too
            self._start = now  # the next command is judged by what it adds

    def close(self) -> None:
        with self._state:
            self._closed = True
            self._state.notify_all()
        self._thread.join(timeout=5)

    def note(self) -> str | None:
        if self.tripped is None:
            return None
        limits = []
        if self.max_bytes is not None:
            limits.append(f"{self.max_bytes >> 20} MiB")
        if self.max_files is not None:
            limits.append(f"{self.max_files} files")
        return (f"the workspace went over its quota ({' / '.join(limits)}; it holds "
                f"{self.tripped.bytes >> 20} MiB in {self.tripped.files} files): the command and every process "
                "it started were stopped. Delete files to get back under the quota.")
