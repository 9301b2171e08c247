"""Reading a task file: ours (with `extends` variants and dataset files) or MLGym's format.

Its own module so that the task schema (spec.py) and the MLGym translation (mlgym.py) both stay
below it: each imports spec.py, neither imports the other's importer.
"""

from __future__ import annotations

from pathlib import Path

from researchgym.errors import TaskConfigError
from researchgym.tasks.mlgym import task_from_mlgym
from researchgym.tasks.spec import (
    TASK_FILE,
    TaskSpec,
    _read_with_base,
    check_files_exist,
    load_dataset_file,
    validate_model,
)


def load_task_file(path: str | Path) -> TaskSpec:
    """Read a task: a folder with `task.yaml`, or a YAML file (ours or MLGym's format)."""
    path = Path(path)
    if path.is_dir():
        path = path / TASK_FILE
    if not path.exists():
        raise TaskConfigError(path, "", "file not found")
    data = _read_with_base(path)
    if "task_entrypoint" in data or "dataset_configs" in data:
        return task_from_mlgym(data, path)
    datasets = data.get("datasets") or []
    resolved = []
    for index, entry in enumerate(datasets if isinstance(datasets, list) else []):
        if isinstance(entry, str):  # a path to a dataset YAML
            ds_path = (path.parent / entry).resolve()
            if not ds_path.exists():
                raise TaskConfigError(path, f"datasets.{index}", f"dataset file {ds_path} does not exist")
            resolved.append(load_dataset_file(ds_path))
        else:
            resolved.append(entry)
    if isinstance(datasets, list):
        data = {**data, "datasets": resolved}
    spec: TaskSpec = validate_model(TaskSpec, data, path)
    spec.source_dir = path.parent.resolve()
    for ds in spec.datasets:
        if ds.base_dir is None:
            ds.base_dir = spec.source_dir
    check_files_exist(spec, path)
    return spec
