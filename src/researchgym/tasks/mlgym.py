"""Import an MLGym-format task YAML (and its dataset YAMLs) into a `TaskSpec`.

MLGym's path conventions (facts of its repository layout, see docs/mlgym.md):

- `starter_code`, a dataset's `data_path`, `memory_path`, `requirements_path` and
  `sample_submission` are relative to the repository root (found here as the first folder,
  from the YAML's own upwards, where the path exists);
- `dataset_configs` are relative to `configs/` (same search);
- `baseline_paths` and `evaluation_paths` are relative to the agent's workspace, where each
  starter path was copied under its basename (`src/train.py` is `train.py` inside the starter
  folder `src`). A path that is no starter file is looked up in the repository instead.

Several MLGym data folders are not in git (its scripts fetch them), some tasks read hub
datasets (the sandbox has no network) and one config names MLGym's abstract task class. Such a
task still loads, so a whole checkout can be listed; what it lacks is kept in
`TaskSpec.unavailable`, and making its environment stops with one line naming the folder or
field and what it should hold. MLGym keeps the metric outside the config: we take
`metric`/`metric_direction` when the file has them, else the first baseline metric and MLGym's
direction table. The task's id is `mlgym-<file name>` (`task_id_for`), never MLGym's `id`, so
that its scores are never pooled with those of our port of the same task.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from researchgym.errors import TaskConfigError
from researchgym.tasks.spec import (
    DatasetSpec,
    TaskSpec,
    Unavailable,
    _read_yaml,
    check_files_exist,
    validate_model,
)

#: MLGym's metric table: these are minimised, everything else is maximised.
MINIMISED_METRICS = {"time", "val_loss", "loss", "rmse", "mse", "mae"}

#: How each MLGym task class is evaluated (its commands, run in the evaluation sandbox's copy
#: of the workspace) and what the submission is. `{config}` is the first YAML file of the
#: starter files, as MLGym's `find <workspace> -name '*.yaml'` picks it.
ENTRYPOINTS: dict[str, tuple[str, list[str]]] = {
    "CSVSubmissionTasks": ("python {eval} --submission_file submission.csv", ["submission.csv"]),
    "PythonSubmissionTasks": ("python {eval}", []),
    "ModelSubmissionTasks": ("python {eval} --config_fname {config}", []),
    "LMSubmissionTasks": ("torchrun --nproc_per_node=$(nvidia-smi --list-gpus | wc -l) --standalone {eval}", []),
}

#: researchgym's own ports of MLGym-Bench tasks, which run without MLGym's fetched data.
BUILTIN_PORTS = {
    "imageClassificationCifar10": "cifar10",
    "imageClassificationFMnist": "imageClassificationFMnist",
    "imageCaptioningCOCO": "coco-captioning",
    "languageModelingFineWeb": "fineweb-lm",
    "naturalLanguageInferenceMNLI": "mnli",
    "regressionKaggleHousePrice": "regressionKaggleHousePrice",
    "regressionKaggleHousePriceL1": "regressionKaggleHousePrice",
    "3SATTime": "3SATTime",
    "battleOfSexes": "battleOfSexes",
    "prisonersDilemma": "prisonersDilemma",
    "blotto": "blotto",
    "rlBreakoutMinAtar": "rl-breakout-minatar",
    "rlMetaMazeMisc": "rl-meta-maze",
    "rlMountainCarContinuous": "rl-mountain-car-continuous",
}

#: What the data folders MLGym keeps out of git must hold (from the files its starter code reads).
DATA_FOLDER_CONTENTS = {
    "3SATTime": "dataset.pkl, the pickled SAT instances its evaluate.py reads",
    "regressionKaggleHousePrice": "train.csv, validation.csv, test.csv and answer.csv, as MLGym's "
    "data/regressionKaggleHousePrice/_helpers/_generate_split.py writes them",
    "imageCaptioningCOCO": "train_images.parquet and val_images.parquet (COCO images and captions)",
    "languageModelingFineWeb": "fineweb10B/fineweb_train_*.bin and fineweb10B/fineweb_val_*.bin (GPT-2 tokens)",
}

#: Imported module (or requirements.txt package) -> the researchgym extra that provides it.
MODULE_EXTRAS = {
    "pandas": "tabular",
    "sklearn": "tabular",
    "scikit-learn": "tabular",
    "torch": "vision",
    "torchvision": "vision",
    "transformers": "nlp",
    "datasets": "hub",
    "jax": "rl",
    "gymnax": "rl",
    "flax": "rl",
    "optax": "rl",
    "nltk": "captioning",
    "PIL": "captioning",
    "pillow": "captioning",
}

_KNOWN = {
    "id",
    "name",
    "description",
    "dataset_configs",
    "task_entrypoint",
    "training_timeout",
    "use_generic_conda",
    "requirements_path",
    "starter_code",
    "baseline_paths",
    "baseline_scores",
    "evaluation_paths",
    "evaluation_read_only",
    "sample_submission",
    "memory_path",
    "secret_files",
    "metric",
    "metric_direction",
    "domain",
}

_FIELD_NAMES = {
    "limits.training_timeout_s": "training_timeout",
    "evaluation.timeout_s": "training_timeout",
    "baseline.scores": "baseline_scores",
    "starter_files": "starter_code",
    "evaluation.files": "evaluation_paths",
    "metric": "metric",
}


def _find(relative: str, start: Path) -> Path | None:
    """`relative` as an absolute path, or looked up from `start` upwards; None if nowhere."""
    candidate = Path(relative).expanduser()
    if candidate.is_absolute():
        return candidate if candidate.exists() else None
    for folder in [start, *start.parents]:
        if (folder / candidate).exists():
            return (folder / candidate).resolve()
    return None


def _not_found(relative: str, start: Path) -> str:
    return f"'{relative}' was not found next to {start} or in any parent folder (MLGym's repository root)"


def task_id_for(path: Path) -> str:
    """researchgym's id of the task in MLGym's file `path`: `mlgym-<file name>`.

    Not MLGym's `id`: that collides with the id of our port of the same task (`battleOfSexes`),
    whose evaluator differs, and MLGym's `imageClassificationCifar10L1.yaml` reuses the id of
    `imageClassificationCifar10.yaml`, a different task. A report keyed by id would pool their
    scores; the file name is unique in its folder and is what a user passes to MLGym."""
    return "mlgym-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-") or "task")


def _gym_name(name: str) -> str:
    """MLGym's display name ("Prisoner's Dilemma") as a Gymnasium-safe name ("PrisonersDilemma")."""
    words = re.findall(r"[A-Za-z0-9]+", name.replace("'", ""))
    return "".join(word[:1].upper() + word[1:] for word in words) or "Task"


class _Reader:
    """One MLGym task file being read: located paths, and what makes the task unavailable."""

    def __init__(self, data: dict[str, Any], path: Path) -> None:
        self.data, self.path, self.start = data, path, path.parent
        self.unavailable: list[Unavailable] = []

    def lack(self, field: str, problem: str) -> None:
        self.unavailable.append(Unavailable(field=field, problem=problem))

    def as_list(self, field: str) -> list[Any]:
        value = self.data.get(field) or []
        if not isinstance(value, list):
            raise TaskConfigError(self.path, field, f"expected a list, got {type(value).__name__}")
        return value

    def locate(self, relative: Any, field: str) -> Path | None:
        if not isinstance(relative, str) or not relative.strip():
            raise TaskConfigError(self.path, field, f"expected a path, got {relative!r}")
        found = _find(relative, self.start)
        if found is None:
            self.lack(field, _not_found(relative, self.start))
        return found

    def dataset(self, config: Path, field: str, task_id: str) -> DatasetSpec | None:
        data = _read_yaml(config)
        data = {k: v for k, v in data.items() if k in DatasetSpec.model_fields}
        spec: DatasetSpec = validate_model(DatasetSpec, data, config)
        if not spec.is_local:
            port = BUILTIN_PORTS.get(task_id)
            self.lack(
                field,
                f"the dataset '{spec.name}' is the hub dataset {spec.data_path}, which MLGym's "
                "code downloads at run time; the sandbox has no network"
                + (
                    f". researchgym's port of this task, '{port}', reads it from the local cache "
                    f"(researchgym prepare {port})"
                    if port
                    else ""
                ),
            )
            return None
        spec.base_dir = config.parent
        located = _find(spec.data_path, config.parent)
        if located is None:
            self.lack(field, self._absent_data(spec, config, task_id))
            return None
        spec.data_path = str(located)
        return spec

    def _absent_data(self, spec: DatasetSpec, config: Path, task_id: str) -> str:
        root = next(
            (folder for folder in [config.parent, *config.parents] if (folder / "configs").is_dir()), config.parent
        )
        folder = (root / spec.data_path).resolve()
        owner = Path(spec.data_path).parts[1] if len(Path(spec.data_path).parts) > 1 else ""
        holds = DATA_FOLDER_CONTENTS.get(owner)
        if holds is None:
            splits = [s for s in (spec.train_split, spec.valid_split, spec.test_split) if s is not None]
            holds = (
                ", ".join(f"the {s.name} files ({s.file_regex})" for s in splits)
                if splits
                else f"the files of '{spec.name}'"
            )
        port = BUILTIN_PORTS.get(task_id)
        return f"the data folder {folder} is absent (MLGym keeps it out of git); it should hold {holds}" + (
            f". researchgym's port of this task, '{port}', needs no such folder" if port else ""
        )


def _required_extras(starter: list[Path], requirements: Path | None) -> list[str]:
    """The researchgym extras the task's code imports (or its requirements.txt lists)."""
    names: set[str] = set()
    if requirements is not None and requirements.is_file():
        for line in requirements.read_text(errors="replace").splitlines():
            match = re.match(r"\s*([A-Za-z0-9_.-]+)", line.split("#", 1)[0])
            if match:
                names.add(match.group(1))
    for item in starter:
        for file in [item] if item.is_file() else sorted(item.rglob("*.py")):
            if file.suffix == ".py":
                for match in re.finditer(
                    r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", file.read_text(errors="replace"), re.MULTILINE
                ):
                    names.add(match.group(1))
    return sorted({MODULE_EXTRAS[name] for name in names if name in MODULE_EXTRAS})


def _workspace_file(relative: str, starter: dict[str, Path]) -> tuple[str, Path] | None:
    """A workspace-relative MLGym path, found among the starter files: (workspace path, source)."""
    parts = Path(relative).parts
    if not parts or parts[0] not in starter:
        return None
    source = starter[parts[0]].joinpath(*parts[1:])
    return (str(Path(*parts)), source) if source.exists() else None


def task_from_mlgym(data: dict[str, Any], path: Path) -> TaskSpec:
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise TaskConfigError(path, unknown[0], f"unknown MLGym task field (known: {', '.join(sorted(_KNOWN))})")
    for required in ("id", "name", "description", "task_entrypoint"):
        if required not in data:
            raise TaskConfigError(path, required, "required MLGym field is missing")
    reader = _Reader(data, path)
    task_id = str(data["id"])
    entry = data["task_entrypoint"]
    if entry not in ENTRYPOINTS:
        why = " (MLGym's abstract base class: MLGym cannot run this file either)" if entry == "BaseMLTask" else ""
        reader.lack("task_entrypoint", f"'{entry}' is not one of {', '.join(ENTRYPOINTS)}{why}")

    datasets = []
    for index, config in enumerate(reader.as_list("dataset_configs")):
        located = reader.locate(config, f"dataset_configs.{index}")
        dataset = reader.dataset(located, f"dataset_configs.{index}", task_id) if located else None
        if dataset is not None:
            datasets.append(dataset)
    if len(datasets) > 1:  # MLGym copies every local dataset into data/; keep them apart here
        for ds in datasets:
            ds.mount = ds.mount or f"data/{ds.name}"

    starter_sources: dict[str, Path] = {}
    for index, item in enumerate(reader.as_list("starter_code")):
        located = reader.locate(item, f"starter_code.{index}")
        if located is not None:
            starter_sources[located.name] = located

    def workspace_paths(field: str) -> list[tuple[str, Path]]:
        found = []
        for index, item in enumerate(reader.as_list(field)):
            if not isinstance(item, str):
                raise TaskConfigError(path, f"{field}.{index}", f"expected a path, got {item!r}")
            inside = _workspace_file(item, starter_sources)
            if inside is None:  # not a starter file: a repository path (older MLGym configs)
                located = _find(item, reader.start)
                if located is None:
                    reader.lack(
                        f"{field}.{index}",
                        f"'{item}' is neither a starter file (a workspace path once "
                        f"starter_code is copied in) nor a file next to {reader.start} "
                        "or in any parent folder",
                    )
                    continue
                inside = (located.name, located)
            found.append(inside)
        return found

    evaluation = workspace_paths("evaluation_paths")
    baselines = workspace_paths("baseline_paths")
    eval_targets = {target for target, _ in evaluation}
    read_only = bool(data.get("evaluation_read_only", False))
    starter = [
        {"src": str(source), "dest": name, "read_only": read_only and name in eval_targets}
        for name, source in starter_sources.items()
    ]
    # An evaluation file that is no starter file still reaches the evaluator (not the agent).
    eval_files = [{"src": str(source), "dest": target} for target, source in evaluation]
    # MLGym copies memory_path only when it exists (researchgym's memory tool keeps its own
    # store); a missing requirements file or sample submission makes MLGym refuse the task.
    # (MLGym asks for the requirements file only when the task has its own environment.)
    if data.get("sample_submission") is not None:
        reader.locate(data["sample_submission"], "sample_submission")
    if data.get("requirements_path") is not None and not data.get("use_generic_conda", False):
        reader.locate(data["requirements_path"], "requirements_path")

    scores = reader.as_list("baseline_scores")
    metric_name = data.get("metric") or (next(iter(scores[0])) if scores and isinstance(scores[0], dict) else None)
    if not metric_name:
        raise TaskConfigError(path, "baseline_scores", "cannot tell the metric: add `metric:` or a baseline score")
    direction = data.get("metric_direction") or (
        "minimize" if str(metric_name).lower() in MINIMISED_METRICS else "maximize"
    )
    command, artefacts = ENTRYPOINTS.get(entry, ("python {eval}", []))
    eval_script = evaluation[0][0] if evaluation else "evaluate.py"
    if entry == "PythonSubmissionTasks":
        artefacts = [name for name in starter_sources if name not in eval_targets]
    config = next(
        (
            str(p.relative_to(source.parent))
            for name, source in sorted(starter_sources.items())
            for p in ([source] if source.is_file() else sorted(source.rglob("*.yaml")))
            if p.suffix == ".yaml"
        ),
        "config.yaml",
    )
    command = command.format(eval=eval_script, config=config)
    baseline_command = None
    if baselines and baselines[0][0] not in eval_targets:  # a baseline of `evaluate.py`: the starter files are it
        runner = (
            "torchrun --nproc_per_node=$(nvidia-smi --list-gpus | wc -l) --standalone"
            if entry == "LMSubmissionTasks"
            else "python"
        )
        baseline_command = f"{runner} {baselines[0][0]}"
    requirements = _find(str(data["requirements_path"]), reader.start) if data.get("requirements_path") else None
    hidden = []
    for index, item in enumerate(reader.as_list("secret_files")):
        located = reader.locate(item, f"secret_files.{index}")
        if located is not None:
            hidden.append(str(located))
    timeout = data.get("training_timeout") or 1800
    port = BUILTIN_PORTS.get(task_id)
    spec_data = {
        "id": task_id_for(path),
        "name": _gym_name(str(data["name"])),
        "domain": data.get("domain", "general"),
        "description": data["description"],
        "datasets": datasets,
        "starter_files": starter,
        "baseline": {"command": baseline_command, "scores": scores},
        "evaluation": {
            "command": command,
            "files": eval_files,
            "timeout_s": timeout,
            "has_test_split": False,
            "result": "stdout",
        },
        "metric": {"name": metric_name, "direction": direction},
        "submission": {"artefacts": artefacts},
        "hidden_files": hidden,
        "limits": {"training_timeout_s": timeout},
        "requirements": _required_extras(list(starter_sources.values()), requirements),
        "requires": {"gpus": 1, "cpu_alternatives": [port] if port else []} if entry == "LMSubmissionTasks" else {},
    }
    try:
        spec: TaskSpec = validate_model(TaskSpec, spec_data, path)
    except TaskConfigError as exc:  # name the MLGym field, not ours
        field = next((theirs for ours, theirs in _FIELD_NAMES.items() if exc.field.startswith(ours)), exc.field)
        raise TaskConfigError(path, field, exc.problem) from None
    spec.source_dir = reader.start.resolve()
    spec.config_file = path.resolve()
    spec.unavailable = reader.unavailable
    check_files_exist(spec, path)
    return spec
