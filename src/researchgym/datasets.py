"""Datasets that are built rather than shipped: prepared once into a cache, then mounted.

A dataset with `prepare: prepare.py` (a script in the task folder) is materialised by running
that script's `prepare(target: Path, report)` in a fresh process, into a temporary folder that
is renamed into place only when it succeeds, with a manifest of every file's SHA-256. Later
uses find the manifest and skip the work. The cache is `$RESEARCHGYM_CACHE` or
`~/.cache/researchgym`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from researchgym.errors import ResearchGymError

MANIFEST = ".researchgym-manifest.json"


class DatasetError(ResearchGymError):
    """A dataset could not be prepared; the message says why and what to do."""


class DatasetUnavailableError(DatasetError):
    """The data is neither cached nor fetchable here (no network): the message says how to pre-fetch."""


#: Exit status of the prepare runner when the script raised researchgym.hub.DatasetUnavailable.
_UNAVAILABLE_EXIT = 3
_UNAVAILABLE_MARK = "RESEARCHGYM-DATASET-UNAVAILABLE "


def cache_root() -> Path:
    return Path(os.environ.get("RESEARCHGYM_CACHE") or Path.home() / ".cache" / "researchgym").expanduser()


def prepared_path(task_id: str, dataset_name: str) -> Path:
    return cache_root() / "datasets" / task_id / dataset_name


def is_prepared(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def file_digests(folder: Path) -> dict[str, str]:
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            digests[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def prepare_dataset(script: Path, target: Path, *, on_line: Callable[[str], None] | None = None) -> dict[str, str]:
    """Run `script` to build `target` (unless already built); return the file digests."""
    if is_prepared(target):
        return json.loads((target / MANIFEST).read_text())["files"]
    if not script.is_file():
        raise DatasetError(f"the dataset's prepare script {script} does not exist")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    runner = (
        "import importlib.util, sys, pathlib\n"
        "spec = importlib.util.spec_from_file_location('prepare_dataset', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "try:\n"
        "    module.prepare(pathlib.Path(sys.argv[2]), lambda text: print(text, flush=True))\n"
        "except Exception as exc:\n"
        "    if type(exc).__name__ != 'DatasetUnavailable':\n"
        "        raise\n"
        f"    print({_UNAVAILABLE_MARK!r} + str(exc), flush=True)\n"
        f"    sys.exit({_UNAVAILABLE_EXIT})\n"
    )
    env = dict(os.environ, RESEARCHGYM_PREPARING_TASK=target.parent.name)
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", runner, str(script), str(staging)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if on_line is not None:
                on_line(line.rstrip("\n"))
        status = process.wait()
        unavailable = [line[len(_UNAVAILABLE_MARK) :] for line in lines if line.startswith(_UNAVAILABLE_MARK)]
        if status == _UNAVAILABLE_EXIT and unavailable:
            raise DatasetUnavailableError(f"cannot prepare {target.parent.name}/{target.name}: {unavailable[-1]}")
        if status != 0:
            tail = "\n".join(lines[-15:])
            raise DatasetError(f"preparing {target.name} with {script} failed:\n{tail}")
        digests = file_digests(staging)
        (staging / MANIFEST).write_text(json.dumps({"script": str(script), "files": digests}, indent=1))
        try:
            staging.rename(target)
        except OSError:  # prepared meanwhile by another process
            if not is_prepared(target):
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return digests
