"""Task and dataset configuration: what a task is, read from `task.yaml` and validated.

The metric's name and direction live in the task itself (MLGym kept them in a separate table).
Every validation error names the file, the field and what was expected.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from researchgym.errors import TaskConfigError
from researchgym.sandbox.base import Limits

TASK_FILE = "task.yaml"
#: Variants of a task live beside its task.yaml, e.g. `task.cpu.yaml` (usually with `extends`).
VARIANT_GLOB = "task.*.yaml"

#: What each package extra must make importable (checked before a task runs).
EXTRA_MODULES: dict[str, list[str]] = {
    "tabular": ["pandas", "sklearn"],
    "vision": ["torch"],
    "local-llm": ["torch", "transformers", "gguf"],
    "rl": ["jax", "gymnax"],
    "nlp": ["torch", "transformers"],
    "hub": ["datasets"],
    "captioning": ["torch", "nltk", "PIL"],
    "mlbench": ["gensim", "sacrebleu", "spacy", "tokenizers", "sklearn"],
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitSpec(_Strict):
    name: str
    file_regex: str = ".*"


class DatasetSpec(_Strict):
    """A dataset, decoupled from tasks so one dataset can serve many."""

    name: str
    description: str = ""
    #: A local folder (relative to the file that declared it) or a hub id when not local.
    #: Omit it when `prepare` builds the data.
    data_path: str = ""
    is_local: bool = True
    #: A script in the task folder whose `prepare(target, report)` builds the data into the
    #: cache, once (see researchgym.datasets).
    prepare: str | None = None
    #: Where the data appears inside the agent's workspace, read-only.
    mount: str | None = None
    train_split: SplitSpec | None = None
    valid_split: SplitSpec | None = None
    test_split: SplitSpec | None = None
    #: Folder the relative `data_path` is resolved against (set by the loader).
    base_dir: Path | None = Field(default=None, exclude=True)

    @property
    def mount_point(self) -> str:
        return self.mount or "data"

    def resolved_path(self, task_id: str = "") -> Path:
        if self.prepare:
            from researchgym.datasets import prepared_path

            return prepared_path(task_id or "shared", self.name)
        path = Path(self.data_path).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return path


class MetricSpec(_Strict):
    name: str
    direction: Literal["maximize", "minimize"]

    def better(self, a: float, b: float) -> bool:
        """True if score `a` is strictly better than `b`."""
        return a > b if self.direction == "maximize" else a < b


class FileSpec(_Strict):
    """A file or folder of the task copied into the workspace."""

    src: str
    dest: str | None = None
    read_only: bool = False

    @property
    def target(self) -> str:
        return self.dest or Path(self.src).name


class BaselineSpec(_Strict):
    #: Shell command that produces the baseline artefact (None: the starter files are the baseline).
    command: str | None = None
    #: Metric values of the baseline, as configured. The first entry is the reference.
    scores: list[dict[str, float]] = Field(default_factory=list)


class AgentCodeSpec(_Strict):
    """The agent's code that an evaluator scores by talking to it (a strategy, a heuristic, a
    policy). It runs in a sandbox of its own holding only the artefact and these public `files`
    (the task's small server that imports the agent's code), with no dataset, no hidden file and
    no secret; its stdin and stdout are the link to the evaluator (see _shared/agent_link.py)."""

    command: str
    files: list[FileSpec] = Field(default_factory=list)
    #: A second, fresh copy of the agent's code for the evaluator to question once the first is
    #: done with: its own sandbox and its own copy of the artefact, so nothing the first copy saw
    #: or wrote reaches it (the RL tasks check that the policy's answers depend on the
    #: observation alone). The evaluator finds its link in $RESEARCHGYM_AGENT_WITNESS_LINK.
    witness: bool = False


class EvaluationSpec(_Strict):
    """How a submission is scored, in a fresh sandbox that never belonged to the agent.

    `command` runs with the evaluation folder as its working directory and may use the
    placeholders `{split}` (validation or test) and `{seed}`. With `result: channel` the
    evaluator writes its metrics, once, to the file named by $RESEARCHGYM_RESULT_FILE, which
    only its sandbox can reach; with `result: stdout` (MLGym's convention, the default for
    tasks that run no agent code) the last line of its output that is a JSON object holds them.
    """

    command: str
    files: list[FileSpec] = Field(default_factory=list)
    timeout_s: float = Field(600.0, gt=0)
    #: Whether validate and submit are scored on separate splits (validation vs hidden test).
    has_test_split: bool = True
    #: The agent's code, when the evaluator runs some: it then gets a sandbox of its own.
    agent_code: AgentCodeSpec | None = None
    #: Where the result travels: `channel` (a file only the evaluator can write) or `stdout`.
    result: Literal["channel", "stdout"] | None = None
    #: Whether the evaluator keeps compiled programs between evaluations (researchgym/compile_cache.py):
    #: it finds them in the folder $RESEARCHGYM_EVALUATOR_CACHE names (e.g. for JAX's persistent cache).
    compile_cache: bool = False

    @model_validator(mode="after")
    def _agent_code_reports_on_the_channel(self) -> EvaluationSpec:
        if self.agent_code is not None and self.result == "stdout":
            raise ValueError(
                "result: stdout cannot be used with agent_code: the agent's code could write "
                "that output; evaluators that run agent code report on the channel"
            )
        if self.compile_cache and self.agent_code is None:
            raise ValueError(
                "compile_cache: true needs agent_code: what the evaluator compiles is kept for later "
                "evaluations, so its sandbox must hold none of the agent's files (run the agent's code "
                "through agent_code, or set compile_cache: false)"
            )
        return self

    @property
    def result_channel(self) -> bool:
        """True when the result must come from the result file (and never from the output)."""
        return self.result == "channel" or (self.result is None and self.agent_code is not None)


Split = Literal["validation", "test"]


class HiddenFileSpec(_Strict):
    """A path the agent never sees: a task-folder path, a `data:<dataset>/...` path, or an
    absolute host path (the upstream files a dataset is built from, when they live in a folder
    every sandbox binds read-only, such as a Debian package's under /usr: masked there). The
    evaluator gets a task or data path only when scoring the listed splits, so nothing printed
    while validating can reveal test labels."""

    path: str
    splits: list[Split] = Field(default_factory=lambda: list[Split](["test"]))


class SubmissionSpec(_Strict):
    #: Paths in the workspace that make up the artefact; empty means the whole workspace.
    artefacts: list[str] = Field(default_factory=list)


class TaskLimits(Limits):
    """Sandbox limits plus what bounds an episode."""

    max_steps: int = Field(50, gt=0)
    training_timeout_s: float = Field(1800.0, gt=0)
    #: A command containing any of these words gets `training_timeout_s` instead of
    #: `command_timeout_s` (MLGym's rule).
    training_markers: list[str] = Field(default_factory=lambda: ["python", "torchrun", "accelerate", "deepspeed"])

    def timeout_for(self, command: str) -> float:
        if any(marker in command for marker in self.training_markers):
            return self.training_timeout_s
        return self.command_timeout_s


class HardwareSpec(_Strict):
    """Hardware a task needs; checked before its environment is made (researchgym.hardware)."""

    gpus: int = Field(0, ge=0)
    #: Task ids to suggest to someone without the hardware (offline or CPU versions).
    cpu_alternatives: list[str] = Field(default_factory=list)


class Unavailable(_Strict):
    """Something a task needs that is not here (an MLGym data folder not fetched, a hub
    dataset without network): the task loads and is listed, but cannot run."""

    field: str
    problem: str


class TaskSpec(_Strict):
    id: str
    name: str
    version: int = 0
    domain: str = "general"
    description: str
    datasets: list[DatasetSpec] = Field(default_factory=list)
    starter_files: list[FileSpec] = Field(default_factory=list)
    baseline: BaselineSpec = Field(default_factory=BaselineSpec)
    evaluation: EvaluationSpec
    metric: MetricSpec
    submission: SubmissionSpec = Field(default_factory=SubmissionSpec)
    #: Task-folder paths the agent must never see (test labels, secrets); masked if reachable.
    #: A bare path is given to the evaluator for the test split only.
    hidden_files: list[HiddenFileSpec] = Field(default_factory=list)
    limits: TaskLimits = Field(default_factory=TaskLimits)
    #: Package extras the task needs (e.g. `vision`).
    requirements: list[str] = Field(default_factory=list)
    #: `requires: gpu` (one GPU) or `requires: {gpus: 2, cpu_alternatives: [...]}`.
    requires: HardwareSpec = Field(default_factory=HardwareSpec)
    source_dir: Path = Field(default=Path("."), exclude=True)
    #: The file the task was read from, when it is not `<source_dir>/task.yaml` (MLGym's).
    config_file: Path | None = Field(default=None, exclude=True)
    #: What keeps this task from running here (set by loaders; empty for runnable tasks).
    unavailable: list[Unavailable] = Field(default_factory=list, exclude=True)

    @field_validator("hidden_files", mode="before")
    @classmethod
    def _bare_hidden_paths(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"path": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("requires", mode="before")
    @classmethod
    def _gpu_shorthand(cls, value: Any) -> Any:
        if value == "gpu":
            return {"gpus": 1}
        if isinstance(value, str):
            raise ValueError(f"must be 'gpu' or a mapping like {{gpus: 2}}, got {value!r}")
        return value

    @field_validator("datasets")
    @classmethod
    def _distinct_mount_points(cls, value: list[DatasetSpec]) -> list[DatasetSpec]:
        seen: dict[str, str] = {}
        for ds in value:
            if not ds.is_local:
                continue  # nothing is mounted for it
            point = ds.mount_point.strip("/")
            for other, name in seen.items():
                if point == other or point.startswith(other + "/") or other.startswith(point + "/"):
                    raise ValueError(
                        f"datasets '{name}' and '{ds.name}' mount at '{other}' and '{point}', which overlap; "
                        "give one a different `mount`"
                    )
            seen[point] = ds.name
        return value

    @field_validator("id")
    @classmethod
    def _id_is_simple(cls, value: str) -> str:
        if not value or any(ch in value for ch in "/ \t\n:"):
            raise ValueError("must be a non-empty name without spaces, slashes or colons")
        return value

    @field_validator("name")
    @classmethod
    def _name_is_gym_name(cls, value: str) -> str:
        if not value.replace("_", "").replace("-", "").isalnum():
            raise ValueError("must contain only letters, digits, '-' and '_' (it becomes a Gymnasium id)")
        return value

    @model_validator(mode="after")
    def _baseline_has_metric(self) -> TaskSpec:
        for entry in self.baseline.scores[:1]:
            if self.metric.name not in entry:
                raise ValueError(
                    f"baseline.scores[0] has no value for the metric '{self.metric.name}' (it has {sorted(entry)})"
                )
        return self

    # -------------------------------------------------------------- derived
    @property
    def gym_id(self) -> str:
        return f"researchgym/{self.name}-v{self.version}"

    @property
    def baseline_score(self) -> float | None:
        return self.baseline.scores[0][self.metric.name] if self.baseline.scores else None

    def rating_facts(self) -> dict[str, Any]:
        """What a report needs to rate this task's scores without loading the task again (its
        file may be gone or changed): recorded in every trajectory's reset line."""
        return {"metric": self.metric.name, "direction": self.metric.direction, "baseline": self.baseline_score}

    def path(self, relative: str) -> Path:
        """A task-folder path, or `data:<dataset>/<file>` for a file of a dataset."""
        if relative.startswith("data:"):
            name, _, rest = relative[len("data:") :].partition("/")
            for ds in self.datasets:
                if ds.name == name:
                    return (ds.resolved_path(self.id) / rest).resolve()
            raise KeyError(f"no dataset named '{name}' (in '{relative}')")
        return (self.source_dir / relative).resolve()

    def dataset_path(self, ds: DatasetSpec) -> Path:
        return ds.resolved_path(self.id)

    def ensure_datasets(self, on_line: Any = None) -> None:
        """Build every dataset that has a prepare script and is not in the cache yet."""
        from researchgym.datasets import prepare_dataset

        for ds in self.datasets:
            if ds.prepare:
                prepare_dataset(self.path(ds.prepare), self.dataset_path(ds), on_line=on_line)

    @property
    def config_path(self) -> Path:
        return self.config_file or self.source_dir / TASK_FILE

    def check_available(self) -> None:
        """Raise, naming the file and field, if something the task needs is not here."""
        if self.unavailable:
            first, more = self.unavailable[0], len(self.unavailable) - 1
            raise TaskConfigError(
                self.config_path,
                first.field,
                f"task '{self.id}' cannot run here: {first.problem}"
                + (f" (and {more} more: researchgym tasks --path {self.config_path})" if more else ""),
            )

    def missing_requirements(self) -> list[str]:
        """The package extras this task needs whose packages are not importable here."""
        import importlib.util

        return [
            extra
            for extra in self.requirements
            if any(importlib.util.find_spec(m) is None for m in EXTRA_MODULES.get(extra, [extra]))
        ]

    def hidden_paths(self) -> list[Path]:
        return [self.path(h.path) for h in self.hidden_files]

    def withheld_paths(self, split: str) -> list[Path]:
        """Hidden paths the evaluator must not get when scoring `split`. Without a separate
        test split (MLGym-imported tasks) nothing can be withheld."""
        if not self.evaluation.has_test_split:
            return []
        return [self.path(h.path) for h in self.hidden_files if split not in h.splits]

    def dataset_docs(self) -> str:
        lines = []
        for ds in self.datasets:
            where = (
                f"read-only, at `{ds.mount_point}`"
                if ds.is_local
                else f"remote dataset `{ds.data_path}`, not mounted: the sandbox has no network"
            )
            lines.append(f"{ds.name} ({where}): {ds.description.strip()}")
        return "\n".join(lines) if lines else "This task has no dataset."

    def prompt(self) -> str:
        """The task description with `{dataset_docs}` filled in (other braces untouched)."""
        return self.description.replace("{dataset_docs}", self.dataset_docs()).strip()

    def derived_seed(self, episode_seed: int, purpose: str) -> int:
        digest = hashlib.sha256(f"{self.id}:{episode_seed}:{purpose}".encode()).digest()
        return int.from_bytes(digest[:4], "little")


# ------------------------------------------------------------------ loading
def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise TaskConfigError(path, "", f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TaskConfigError(path, "", f"invalid YAML{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise TaskConfigError(path, "", f"expected a mapping of fields at the top level, got {type(data).__name__}")
    return data


def _describe(errors: list[Any]) -> tuple[str, str]:
    """The first failing field (dotted path) and a readable account of every problem."""
    parts = []
    for error in errors:
        loc = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see docs/task-authoring.md)"
        elif error["type"] == "missing":
            message = "required field is missing"
        parts.append((loc, message))
    if len(parts) == 1:
        return parts[0]
    return parts[0][0], " | ".join(f"{loc or '(top level)'}: {message}" for loc, message in parts)


def validate_model(model: type[BaseModel], data: dict[str, Any], path: Path, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        field, problems = _describe(exc.errors())
        raise TaskConfigError(path, prefix + field, problems) from None


def load_dataset_file(path: Path) -> DatasetSpec:
    data = _read_yaml(path)
    spec: DatasetSpec = validate_model(DatasetSpec, data, path)
    spec.base_dir = path.parent
    return spec


def _merged(base: Any, override: Any) -> Any:
    """`override` over `base`: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in override.items()}}
    return override


def _read_with_base(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A task file, merged over the file its `extends` names (relative to it). A variant, such as
    the CPU budget of an RL task, then states only what differs."""
    data = _read_yaml(path)
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str):
        raise TaskConfigError(path, "extends", "must be the path of another task file, relative to this one")
    base_path = (path.parent / base_name).resolve()
    if base_path in seen or base_path == path.resolve():
        raise TaskConfigError(path, "extends", f"{base_name} extends this file again (a loop)")
    if not base_path.is_file():
        raise TaskConfigError(path, "extends", f"{base_path} does not exist")
    return _merged(_read_with_base(base_path, (*seen, path.resolve())), data)


def check_files_exist(spec: TaskSpec, path: Path) -> None:
    """Name the field of a file the task refers to but does not have."""
    agent_files = spec.evaluation.agent_code.files if spec.evaluation.agent_code else []
    for field, files in (
        ("starter_files", spec.starter_files),
        ("evaluation.files", spec.evaluation.files),
        ("evaluation.agent_code.files", agent_files),
    ):
        for index, item in enumerate(files):
            if item.src.startswith("data:"):
                continue  # a file of a dataset that may not be prepared yet
            if not spec.path(item.src).exists():
                raise TaskConfigError(path, f"{field}.{index}.src", f"{spec.path(item.src)} does not exist")
    hidden = spec.hidden_paths()
    for field, files in (("starter_files", spec.starter_files), ("evaluation.agent_code.files", agent_files)):
        for index, item in enumerate(files):
            source = spec.path(item.src)
            for secret in hidden:
                if secret == source or secret.is_relative_to(source) or source.is_relative_to(secret):
                    raise TaskConfigError(
                        path, f"{field}.{index}.src", f"{item.src} overlaps {secret}, which is listed in hidden_files"
                    )
    for index, ds in enumerate(spec.datasets):
        if ds.prepare:
            if not spec.path(ds.prepare).is_file():
                raise TaskConfigError(path, f"datasets.{index}.prepare", f"{spec.path(ds.prepare)} does not exist")
        elif not ds.data_path:
            raise TaskConfigError(path, f"datasets.{index}.data_path", "give a data_path, or a prepare script")
        elif ds.is_local and not ds.resolved_path().exists():
            raise TaskConfigError(path, f"datasets.{index}.data_path", f"{ds.resolved_path()} does not exist")
