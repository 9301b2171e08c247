"""Import an MLGym-format task YAML (and its dataset YAMLs) into a `TaskSpec`.

MLGym paths are relative to its repository layout (`configs/` and `data/`), so each path is
looked up against the YAML's folder and each of its parents; the first folder where it exists
wins. MLGym keeps the metric outside the config: we take `metric`/`metric_direction` when the
file has them, else the first baseline metric and MLGym's direction table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from researchgym.errors import TaskConfigError
from researchgym.tasks.spec import (
    DatasetSpec,
    TaskSpec,
    _read_yaml,
    check_files_exist,
    validate_model,
)

#: MLGym's metric table: these are minimised, everything else is maximised.
MINIMISED_METRICS = {"time", "val_loss", "loss", "rmse", "mse", "mae"}

#: How each MLGym task class is evaluated here: command and submission artefacts.
ENTRYPOINTS: dict[str, tuple[str, list[str]]] = {
    "CSVSubmissionTasks": ("python evaluate.py --submission_file submission.csv", ["submission.csv"]),
    "PythonSubmissionTasks": ("python evaluate.py", []),
    "ModelSubmissionTasks": ("python evaluate.py --config_fname config.yaml", ["checkpoints", "config.yaml"]),
    "LMSubmissionTasks": ("python evaluate.py", []),
}

_KNOWN = {
    "id", "name", "description", "dataset_configs", "task_entrypoint", "training_timeout",
    "use_generic_conda", "requirements_path", "starter_code", "baseline_paths", "baseline_scores",
    "evaluation_paths", "evaluation_read_only", "sample_submission", "memory_path", "secret_files",
    "metric", "metric_direction", "domain",
}


_FIELD_NAMES = {
    "limits.training_timeout_s": "training_timeout",
    "evaluation.timeout_s": "training_timeout",
    "baseline.scores": "baseline_scores",
    "starter_files": "starter_code",
    "evaluation.files": "evaluation_paths",
    "metric": "metric",
}


def _locate(relative: str, start: Path, path: Path, field: str) -> Path:
    candidate = Path(relative)
    if candidate.is_absolute():
        if candidate.exists():
            return candidate
        raise TaskConfigError(path, field, f"{candidate} does not exist")
    for folder in [start, *start.parents]:
        if (folder / candidate).exists():
            return (folder / candidate).resolve()
    raise TaskConfigError(path, field, f"'{relative}' was not found next to {start} or in any parent folder")


def _mlgym_dataset(path: Path) -> DatasetSpec:
    data = _read_yaml(path)
    data = {k: v for k, v in data.items() if k in DatasetSpec.model_fields}
    spec: DatasetSpec = validate_model(DatasetSpec, data, path)
    if spec.is_local:
        spec.base_dir = path.parent
        local = _locate(spec.data_path, path.parent, path, "data_path")
        spec.data_path = str(local)
    return spec


def task_from_mlgym(data: dict[str, Any], path: Path) -> TaskSpec:
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise TaskConfigError(path, unknown[0], f"unknown MLGym task field (known: {', '.join(sorted(_KNOWN))})")
    for required in ("id", "name", "description", "task_entrypoint"):
        if required not in data:
            raise TaskConfigError(path, required, "required MLGym field is missing")
    entry = data["task_entrypoint"]
    if entry not in ENTRYPOINTS:
        raise TaskConfigError(path, "task_entrypoint", f"'{entry}' is not one of {', '.join(ENTRYPOINTS)}")
    start = path.parent

    def as_list(field: str) -> list[Any]:
        value = data.get(field) or []
        if not isinstance(value, list):
            raise TaskConfigError(path, field, f"expected a list, got {type(value).__name__}")
        return value

    datasets = []
    for index, ds in enumerate(as_list("dataset_configs")):
        datasets.append(_mlgym_dataset(_locate(str(ds), start, path, f"dataset_configs.{index}")))
    if len(datasets) > 1:  # one dataset appears as data/, several as data/<name>/
        for ds in datasets:
            ds.mount = ds.mount or f"data/{ds.name}"
    evaluation_paths = [_locate(str(p), start, path, f"evaluation_paths.{i}") for i, p in enumerate(as_list("evaluation_paths"))]
    eval_names = {p.name for p in evaluation_paths}
    read_only = bool(data.get("evaluation_read_only", False))
    starter = []
    for index, item in enumerate(as_list("starter_code")):
        located = _locate(str(item), start, path, f"starter_code.{index}")
        starter.append({"src": str(located), "dest": located.name, "read_only": read_only and located.name in eval_names})
    scores = as_list("baseline_scores")
    metric_name = data.get("metric") or (next(iter(scores[0])) if scores and isinstance(scores[0], dict) else None)
    if not metric_name:
        raise TaskConfigError(path, "baseline_scores", "cannot tell the metric: add `metric:` or a baseline score")
    direction = data.get("metric_direction") or ("minimize" if str(metric_name).lower() in MINIMISED_METRICS else "maximize")
    command, artefacts = ENTRYPOINTS[entry]
    if entry == "PythonSubmissionTasks":
        artefacts = [s["dest"] for s in starter if s["dest"] not in eval_names]
    hidden = [str(_locate(str(p), start, path, f"secret_files.{i}")) for i, p in enumerate(as_list("secret_files"))]
    timeout = data.get("training_timeout") or 1800
    spec_data = {
        "id": data["id"],
        "name": data["name"],
        "domain": data.get("domain", "general"),
        "description": data["description"],
        "datasets": datasets,
        "starter_files": starter,
        "baseline": {"command": None, "scores": scores},
        "evaluation": {
            "command": command,
            "files": [{"src": str(p), "dest": p.name} for p in evaluation_paths],
            "timeout_s": timeout,
            "has_test_split": False,
        },
        "metric": {"name": metric_name, "direction": direction},
        "submission": {"artefacts": artefacts},
        "hidden_files": hidden,
        "limits": {"training_timeout_s": timeout},
    }
    try:
        spec: TaskSpec = validate_model(TaskSpec, spec_data, path)
    except TaskConfigError as exc:  # name the MLGym field, not ours
        field = next((theirs for ours, theirs in _FIELD_NAMES.items() if exc.field.startswith(ours)), exc.field)
        raise TaskConfigError(path, field, exc.problem) from None
    spec.source_dir = start.resolve()
    check_files_exist(spec, path)
    return spec
