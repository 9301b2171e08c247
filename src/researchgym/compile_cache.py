"""Compiled programs an evaluator keeps between evaluations, written by researchgym alone.

An RL evaluation spends seconds having JAX compile the same rollout every time. A task whose
evaluation sets `compile_cache: true` gets, in its evaluator's sandbox, a fresh folder
(named by $RESEARCHGYM_EVALUATOR_CACHE) filled with copies of what earlier evaluations compiled;
the evaluator points JAX's persistent compilation cache at it. When the evaluator has finished
by itself (it reported a result, so every write is complete), researchgym copies the new
entries into the shared folder, each under a temporary name and then renamed, so a reader
never sees half a file.

Why this cannot be used to forge a score: no sandbox ever gets the shared folder; only the
evaluator's sandbox gets a copy, and the spec allows the cache only for tasks whose evaluator
holds none of the agent's files (`agent_code`: the agent's code runs in a sandbox of its own,
which never sees either folder). What the evaluator compiles depends on the task alone.

The shared folder is `$RESEARCHGYM_COMPILE_CACHE` (or `$RESEARCHGYM_CACHE/compile-cache`), one
subfolder per evaluator (a digest of its files, so a changed evaluator starts afresh and no
task's evaluator reads another's entries). `RESEARCHGYM_COMPILE_CACHE=off` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from researchgym.datasets import cache_root
from researchgym.tasks.spec import TaskSpec

#: The host's setting: where the shared folders live, or `off`.
VARIABLE = "RESEARCHGYM_COMPILE_CACHE"
#: What the evaluator's sandbox gets: its own folder, a copy of the shared one.
EVALUATOR_VARIABLE = "RESEARCHGYM_EVALUATOR_CACHE"
#: Values of the host variable that turn the cache off.
OFF = {"off", "0", "false", "no", "none"}
#: A name the cache accepts: JAX's are `<module>-<sha256>-cache` and XLA's autotune files.
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}$")
#: The deepest entry kept (XLA's GPU autotune cache writes one level of folders).
MAX_DEPTH = 3
#: The largest single entry kept, and the most one evaluator's folder holds (oldest go first).
MAX_ENTRY_BYTES = 64 << 20
MAX_FOLDER_BYTES = 256 << 20
_TEMPORARY = ".incoming-"


def shared_root() -> Path | None:
    """The host folder holding every evaluator's cache, or None when turned off."""
    value = os.environ.get(VARIABLE, "").strip()
    if value.lower() in OFF:
        return None
    return Path(value).expanduser() if value else cache_root() / "compile-cache"


def evaluator_digest(task: TaskSpec) -> str:
    """Names the evaluator by its command and the bytes of its files."""
    digest = hashlib.sha256(task.evaluation.command.encode())
    for item in sorted(task.evaluation.files, key=lambda item: item.target):
        digest.update(b"\0" + item.target.encode() + b"\0")
        digest.update(task.path(item.src).read_bytes())
    return digest.hexdigest()[:24]


class CompileCache:
    """One evaluator's shared folder: `stage` copies its entries out, `publish` takes new ones in."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def for_task(cls, task: TaskSpec) -> CompileCache | None:
        """The task's cache, or None when the task asks for none or the cache is off."""
        root = shared_root()
        if not task.evaluation.compile_cache or root is None:
            return None
        return cls(root / evaluator_digest(task))

    def stage(self, into: Path) -> int:
        """Copy every entry into the empty folder `into` (the evaluator's own); returns the count.
        Copies, not links: nothing done to them can reach the shared files."""
        count = 0
        for relative, _ in entries(self.folder):
            target = into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                copy_regular(self.folder / relative, target)
            except OSError:
                continue  # evicted meanwhile: the evaluator compiles it again
            count += 1
        return count

    def publish(self, source: Path) -> int:
        """Take in the entries of `source` (a finished evaluator's folder) that are new: plain
        files with plain names, each renamed into place once complete. Returns the count."""
        held = list(entries(self.folder))
        known = {relative for relative, _ in held}
        fresh = [(relative, size) for relative, size in entries(source) if relative not in known]
        if not fresh:
            return 0
        self._make_room(held, sum(size for _, size in fresh))
        published = 0
        for relative, _ in fresh:
            target = self.folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.parent / f"{_TEMPORARY}{secrets.token_hex(8)}"
            try:
                copy_regular(source / relative, temporary)
                os.replace(temporary, target)
                published += 1
            except OSError:
                temporary.unlink(missing_ok=True)
        return published

    def _make_room(self, held: list[tuple[str, int]], incoming: int) -> None:
        """Remove the oldest of the `held` entries until `incoming` more bytes fit under
        MAX_FOLDER_BYTES."""
        total = sum(size for _, size in held)
        for relative, size in sorted(held, key=lambda entry: _mtime(self.folder / entry[0])):
            if total + incoming <= MAX_FOLDER_BYTES:
                break
            (self.folder / relative).unlink(missing_ok=True)
            total -= size


def copy_regular(source: Path, target: Path) -> None:
    """Copy a regular file's bytes, refusing a link or anything else (OSError), to a new file."""
    descriptor = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as reader:
        info = os.fstat(reader.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES:
            raise OSError(f"{source} is not a cache entry")
        with open(target, "xb") as writer:
            shutil.copyfileobj(reader, writer)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def entries(folder: Path) -> Iterator[tuple[str, int]]:
    """The entries under `folder` a cache keeps: regular files (never links or devices) at most
    MAX_DEPTH deep, every part of their path a plain name, each at most MAX_ENTRY_BYTES; with
    their sizes. Anything else is ignored, so odd names never leave the evaluator's folder."""

    def walk(directory: Path, prefix: str, depth: int) -> Iterator[tuple[str, int]]:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in names:
            if not _NAME.match(name):  # also skips a half-copied `.incoming-` file
                continue
            path = directory / name
            try:
                info = path.lstat()
            except OSError:
                continue
            relative = f"{prefix}{name}"
            if stat.S_ISDIR(info.st_mode) and depth < MAX_DEPTH:
                yield from walk(path, relative + "/", depth + 1)
            elif stat.S_ISREG(info.st_mode) and info.st_size <= MAX_ENTRY_BYTES:
                yield relative, info.st_size

    yield from walk(folder, "", 1)
