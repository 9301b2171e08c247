"""Trajectories: one JSONL file per episode, one line appended and flushed per event.

Lines have a `type`: `reset` (task, seed, prompt), `step` (action, observation, timings,
scores), and `end` (exit status, final score). A crash loses at most the step in flight.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


class TrajectoryWriter:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        record = {"v": SCHEMA_VERSION, "time": time.time(), **record}
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def read_trajectory(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a trajectory; a torn last line (from a crash) is skipped."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
