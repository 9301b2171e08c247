"""What a sample's setup left in the workspace, kept so the judge lays it down again instead of
rerunning the setup for every answer to the same sample.

A sample's setup is the sample's own seeded script (it writes a small corpus, a config, a data
file), never the answer's, and the judge copies a fresh repository for every answer; rerunning it
cost about a third of a judgment. The judge keeps a capture only where the setup wrote nothing
outside the workspace (its HOME and /tmp die with the sandbox, so a replay could not restore
them), and replays it before anything else looks at the workspace.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

#: A setup that writes more than this runs for every answer rather than being held in memory.
MAX_CAPTURE_BYTES = 256 * 1024 * 1024

#: path relative to the workspace -> (kind, size, mtime_ns, mode): enough to see what a setup touched.
TreeState = dict[str, tuple[str, int, int, int]]


def tree_state(root: Path) -> TreeState:
    """Every entry under `root`, without following links."""
    state: TreeState = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            kind = "link" if stat.S_ISLNK(st.st_mode) else "dir" if stat.S_ISDIR(st.st_mode) else "file"
            state[os.path.relpath(path, root)] = (kind, st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode))
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
    return state


@dataclass
class SetupCapture:
    """The entries a setup added or changed, and the ones it removed."""

    dirs: dict[str, int] = field(default_factory=dict)  # path -> mode
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> (content, mode)
    links: dict[str, str] = field(default_factory=dict)  # path -> target
    removed: list[str] = field(default_factory=list)

    @classmethod
    def between(cls, root: Path, before: TreeState, after: TreeState) -> SetupCapture | None:
        """The difference, or None where its files pass MAX_CAPTURE_BYTES."""
        capture = cls()
        size = sum(entry[1] for path, entry in after.items() if entry[0] == "file" and before.get(path) != entry)
        if size > MAX_CAPTURE_BYTES:
            return None
        for path, entry in sorted(after.items()):
            if before.get(path) == entry:
                continue
            kind, _, _, mode = entry
            full = root / path
            if kind == "dir":
                capture.dirs[path] = mode
            elif kind == "link":
                capture.links[path] = os.readlink(full)
            else:
                capture.files[path] = (full.read_bytes(), mode)
        # deepest first, so a removed folder's entries go before the folder
        capture.removed = sorted((p for p in before if p not in after), key=lambda p: -p.count(os.sep))
        return capture

    def apply(self, root: Path) -> None:
        """Lays the setup's result over a fresh copy of the repository at `root`."""
        for path in self.removed:
            _remove(root / path)
        for path in self.dirs:
            folder = root / path
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                _remove(folder)
            folder.mkdir(parents=True, exist_ok=True)
        for path, target in self.links.items():
            link = root / path
            _remove(link)
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, link)
        for path, (content, mode) in self.files.items():
            file = root / path
            if file.is_symlink() or file.is_dir():
                _remove(file)
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(content)
            os.chmod(file, mode)
        for path, mode in self.dirs.items():  # last: a folder the setup made read-only still took its files
            os.chmod(root / path, mode)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
