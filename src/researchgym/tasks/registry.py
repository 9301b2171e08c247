"""Finding tasks by id or name: built-in tasks, user folders, and entry points.

Search order: a path to a folder or YAML file; built-in tasks; folders listed in the
RESEARCHGYM_TASKS_PATH environment variable (colon-separated); the `researchgym.tasks` entry
point group (each entry names a package whose folder holds task folders, a path, or a callable
returning such paths).
"""

from __future__ import annotations

import os
import warnings
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from researchgym.errors import ResearchGymError, TaskConfigError, UnknownNameError
from researchgym.tasks.loader import load_task_file
from researchgym.tasks.spec import TASK_FILE, VARIANT_GLOB, TaskSpec

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"


def task_roots() -> list[Path]:
    roots = [BUILTIN_DIR]
    for part in os.environ.get("RESEARCHGYM_TASKS_PATH", "").split(os.pathsep):
        if part:
            roots.append(Path(part).expanduser())
    for entry in entry_points(group="researchgym.tasks"):
        try:
            target = entry.load()
            if isinstance(target, ModuleType):  # a package: its folder holds task folders
                paths = list(getattr(target, "__path__", []))
                if not paths:
                    raise TypeError("names a module, not a package of task folders")
                roots.extend(Path(p) for p in paths)
                continue
            found = target() if callable(target) else target
            roots.extend(Path(p) for p in (found if isinstance(found, (list, tuple)) else [found]))
        except Exception as exc:  # one broken plugin must not hide the other tasks
            warnings.warn(
                f"researchgym: skipped the task entry point '{entry.name}' ({entry.value}): {exc}", stacklevel=2
            )
    return roots


def task_files() -> list[Path]:
    """Every task file: `<folder>/task.yaml` and its variants `<folder>/task.<variant>.yaml`."""
    files = []
    for root in task_roots():
        if root.is_dir():
            for folder in sorted(p.parent for p in root.glob(f"*/{TASK_FILE}")):
                files.append(folder / TASK_FILE)
                files.extend(sorted(folder.glob(VARIANT_GLOB)))
    return files


@cache
def _load_cached(path: str, stamp: tuple[float, ...]) -> TaskSpec:
    return load_task_file(path)


def _load(path: Path) -> TaskSpec:
    """Load (cached by file and by the modification times of the YAML files beside it, so a
    variant is read again when the task.yaml it extends changes); callers get their own copy."""
    file = path / TASK_FILE if path.is_dir() else path
    stamp = tuple(p.stat().st_mtime for p in sorted(file.parent.glob("*.yaml"))) if file.exists() else ()
    spec = _load_cached(str(file.resolve()), stamp)
    return spec.model_copy(deep=True)


def all_tasks(errors: list[ResearchGymError] | None = None) -> list[TaskSpec]:
    """Every task found. With `errors`, broken task folders are collected there and skipped
    (so one bad folder on RESEARCHGYM_TASKS_PATH does not hide the others); without, they raise."""
    specs = []
    for file in task_files():
        try:
            specs.append(_load(file))
        except TaskConfigError as exc:
            if errors is None:
                raise
            errors.append(exc)
    return specs


def task_files_in(folder: str | Path) -> list[Path]:
    """The task files of a folder a user points at: an MLGym checkout (its `configs/tasks/*.yaml`),
    a folder of task folders (`*/task.yaml` and their variants), or a folder of task YAML files
    (ours or MLGym's). A task file itself is returned as it is."""
    folder = Path(folder).expanduser()
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise TaskConfigError(folder, "", "no such folder or task file")
    if (folder / TASK_FILE).is_file():
        return [folder / TASK_FILE, *sorted(folder.glob(VARIANT_GLOB))]
    mlgym_tasks = folder / "configs" / "tasks"
    if mlgym_tasks.is_dir():
        folder = mlgym_tasks
    files = []
    for task_folder in sorted(p.parent for p in folder.glob(f"*/{TASK_FILE}")):
        files += [task_folder / TASK_FILE, *sorted(task_folder.glob(VARIANT_GLOB))]
    files += sorted(p for p in [*folder.glob("*.yaml"), *folder.glob("*.yml")] if _looks_like_task(p))
    return files


def _looks_like_task(path: Path) -> bool:
    """A YAML file with a task's top-level fields (a dataset file or any other YAML is not one)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return True  # let the loader name what is wrong with it
    return isinstance(data, dict) and ("task_entrypoint" in data or ("evaluation" in data and "id" in data))


def tasks_in(folder: str | Path) -> list[tuple[Path, TaskSpec | TaskConfigError]]:
    """Every task file of `folder` (see task_files_in) with its spec, or why it does not load."""
    found: list[tuple[Path, TaskSpec | TaskConfigError]] = []
    for file in task_files_in(folder):
        try:
            found.append((file, _load(file)))
        except TaskConfigError as exc:
            found.append((file, exc))
    return found


def load_task(id_or_path: str | Path) -> TaskSpec:
    """Load a task by id, by name (`BattleOfSexes`), by Gymnasium id, or from a path."""
    candidate = Path(id_or_path).expanduser()
    if candidate.exists():
        return _load(candidate)
    wanted = str(id_or_path)
    if wanted.startswith("researchgym/"):
        wanted = wanted.split("/", 1)[1].rsplit("-v", 1)[0]
    key = wanted.lower()
    tasks = all_tasks(errors=[])
    for spec in tasks:
        if key in (spec.id.lower(), spec.name.lower()):
            return spec
    raise UnknownNameError("task", wanted, [t.id for t in tasks])
