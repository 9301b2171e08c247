"""Copying the artefact out of the workspace without trusting anything in it.

The workspace is a host folder that the agent's processes may change while the host reads it,
so a check on a path followed by a copy of that path would race: swap a checked file for a
symbolic link in between and the host copies whatever the link names, with the host's
privileges. Here every path component is opened relative to the folder already opened above
it, with O_NOFOLLOW, and what was opened is checked (fstat) before a byte is read: a link, a
FIFO, a socket or a device is refused wherever it appears, and a file swapped mid-copy is
either the old one, the new one, or refused, never something outside the workspace.

Sizes are counted before copying, by the larger of apparent and allocated size, so a sparse
file of a terabyte is refused instead of being written out in full; file counts and folder
depth are capped too.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from researchgym.errors import EvaluationError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_DEPTH = 128
_CHUNK = 1 << 20


@dataclass
class SnapshotLimits:
    """What one artefact may hold."""

    max_bytes: int | None = 20_000 << 20
    max_files: int | None = 500_000


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file or folder"


class _Copier:
    def __init__(self, limits: SnapshotLimits) -> None:
        self.limits = limits
        self.bytes = 0
        self.files = 0

    def _refuse(self, shown: str, why: str) -> EvaluationError:
        return EvaluationError(
            "submission_not_found",
            f"the artefact cannot be copied: {shown} {why}; an artefact may hold regular "
            "files and folders only (no links, FIFOs, sockets or devices)",
        )

    def _count(self, shown: str, size: int) -> None:
        self.files += 1
        self.bytes += size
        if self.limits.max_files is not None and self.files > self.limits.max_files:
            raise EvaluationError(
                "submission_not_found", f"the artefact holds more than {self.limits.max_files:,} files and folders"
            )
        if self.limits.max_bytes is not None and self.bytes > self.limits.max_bytes:
            raise EvaluationError(
                "submission_not_found",
                f"the artefact is larger than {self.limits.max_bytes >> 20:,} MiB (at {shown}, "
                "counting sparse files at their full size)",
            )

    def copy(self, parent: int, name: str, target: Path, shown: str, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise EvaluationError("submission_not_found", f"the artefact nests folders deeper than {MAX_DEPTH} levels")
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            raise EvaluationError(
                "submission_not_found", f"{shown} disappeared while the artefact was copied"
            ) from None
        if stat.S_ISDIR(info.st_mode):
            self._copy_folder(parent, name, target, shown, depth)
        elif stat.S_ISREG(info.st_mode):
            self._copy_file(parent, name, target, shown)
        else:
            raise self._refuse(shown, f"is {_kind(info.st_mode)}")

    def _open(self, parent: int, name: str, flags: int, shown: str) -> int:
        try:
            return os.open(name, flags, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.EMLINK):
                raise self._refuse(shown, "changed into something else while it was copied") from None
            raise EvaluationError("submission_not_found", f"cannot read {shown}: {exc.strerror or exc}") from None

    def _copy_folder(self, parent: int, name: str, target: Path, shown: str, depth: int) -> None:
        descriptor = self._open(parent, name, _DIR_FLAGS, shown)
        try:
            if not stat.S_ISDIR(os.fstat(descriptor).st_mode):
                raise self._refuse(shown, "changed into something else while it was copied")
            self._count(shown, 0)
            target.mkdir(mode=0o755, exist_ok=True)
            for child in sorted(os.listdir(descriptor)):
                self.copy(descriptor, child, target / child, f"{shown}/{child}", depth + 1)
        finally:
            os.close(descriptor)

    def _copy_file(self, parent: int, name: str, target: Path, shown: str) -> None:
        descriptor = self._open(parent, name, _FILE_FLAGS, shown)
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise self._refuse(shown, f"is {_kind(info.st_mode)}")
            self._count(shown, max(info.st_size, info.st_blocks * 512))
            os.set_blocking(descriptor, True)
            allowed = info.st_size  # what was counted; a file that grows meanwhile is cut there
            out = os.open(
                target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o755 if info.st_mode & 0o111 else 0o644
            )
            try:
                while allowed > 0:
                    chunk = os.read(descriptor, min(_CHUNK, allowed))
                    if not chunk:
                        break
                    allowed -= len(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view) :]
            finally:
                os.close(out)
        finally:
            os.close(descriptor)


def read_regular_file(path: str | Path, limit: int) -> bytes | None:
    """At most `limit` bytes of a file something untrusted could have replaced (with a link, a
    FIFO, a device): read only if it is a regular file, never following a link, never blocking;
    None otherwise or when it cannot be read."""
    try:
        descriptor = os.open(path, _FILE_FLAGS)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        try:
            return handle.read(limit) if stat.S_ISREG(os.fstat(descriptor).st_mode) else None
        except OSError:
            return None


def snapshot(workspace: Path, names: list[str], destination: Path, limits: SnapshotLimits | None = None) -> list[str]:
    """Copy `names` (paths relative to `workspace`, e.g. `checkpoints` or `src/model.py`) into
    `destination`, refusing anything but regular files and folders. Returns the names copied."""
    copier = _Copier(limits or SnapshotLimits())
    root = os.open(workspace, _DIR_FLAGS)
    try:
        for name in names:
            parts = [part for part in Path(name).parts if part not in ("", ".")]
            if not parts or ".." in parts or Path(name).is_absolute():
                raise EvaluationError(
                    "submission_not_found",
                    f"the artefact path '{name}' must be relative to the workspace, without '..'",
                )
            parent, opened = root, []
            try:
                for index, part in enumerate(parts[:-1]):
                    parent = copier._open(parent, part, _DIR_FLAGS, "/".join(parts[: index + 1]))
                    opened.append(parent)
                try:
                    os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
                except FileNotFoundError:
                    raise EvaluationError(
                        "submission_not_found",
                        f"the submission artefact '{name}' was not found in the workspace (expected at {name}, "
                        "relative to the workspace root)",
                    ) from None
                target = destination.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                copier.copy(parent, parts[-1], target, name)
            finally:
                for descriptor in opened:
                    os.close(descriptor)
    finally:
        os.close(root)
    return names


def whole_workspace(workspace: Path, skip: set[str]) -> list[str]:
    """The names that make up an artefact of "the whole workspace": every top-level regular file
    and folder except `skip` (the dataset mount points); links and special files are left out."""
    root = os.open(workspace, _DIR_FLAGS)
    try:
        names = []
        for name in sorted(os.listdir(root)):
            mode = os.stat(name, dir_fd=root, follow_symlinks=False).st_mode
            if name not in skip and (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                names.append(name)
        return names
    finally:
        os.close(root)
