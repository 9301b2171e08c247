"""The run folder, in one place: what each file and folder is called and where an episode's
belong. The runner writes it; the viewer, the report, export, the curriculum and the MLGym
importer read it through the same names.

    run.json                          what was asked (tasks, methods, seeds, limits): used to resume
    results.sqlite                    the store (see store.py)
    trajectories/<episode>/*.jsonl    each episode's trajectory
    workspaces/<episode>/             each episode's workspace (kept for inspection)
    memory/<method>/                  task-scoped agent memory, one per method
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from researchgym.runs.store import DB_NAME

RUN_FILE = "run.json"
TRAJECTORIES = "trajectories"
WORKSPACES = "workspaces"
MEMORY = "memory"


def safe_name(text: str) -> str:
    """`text` as one file name (episode ids hold '|' and model names '/')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE

    @property
    def store_file(self) -> Path:
        return self.root / DB_NAME

    def trajectories(self, episode: str) -> Path:
        """The folder of one episode's trajectory files (episode: its id)."""
        return self.root / TRAJECTORIES / safe_name(episode)

    def workspace(self, episode: str) -> Path:
        return self.root / WORKSPACES / safe_name(episode)

    def memory(self, method_label: str) -> Path:
        """Task-scoped memory of one method: one model's findings never reach another's episodes."""
        return self.root / MEMORY / safe_name(method_label)


def trajectory_files(root: str | Path) -> list[Path]:
    """Every trajectory file (`*.jsonl`) under `root`: a run folder, a folder of run folders, or
    a plain folder of trajectories. Inside a run folder (one with run.json or a store) only its
    trajectories/ folder is searched: its workspaces and memory hold what agents wrote, and a
    file an agent shaped like a trajectory in its workspace was reported as an episode of any
    method it named, with any score. Links are never followed (a workspace's link to / would
    have had the whole machine searched)."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        if (here / RUN_FILE).is_file() or (here / DB_NAME).is_file():
            dirs[:] = [d for d in dirs if d == TRAJECTORIES]
        found += [here / name for name in files if name.endswith(".jsonl") and not (here / name).is_symlink()]
    return sorted(found)
