"""Task configuration: our format, MLGym's format, and errors that name file and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import write_task

from researchgym.errors import TaskConfigError, UnknownNameError
from researchgym.tasks.loader import load_task_file
from researchgym.tasks.registry import all_tasks, load_task


def test_builtin_battle_of_sexes_spec():
    spec = load_task("battleOfSexes")
    assert spec.name == "BattleOfSexes" and spec.gym_id == "researchgym/BattleOfSexes-v0"
    assert spec.metric.name == "Score" and spec.metric.direction == "maximize"
    assert spec.baseline_score == pytest.approx(1.0226699)
    assert spec.submission.artefacts == ["strategy.py"]
    assert "{dataset_docs}" not in spec.prompt()
    assert load_task("researchgym/BattleOfSexes-v0").id == "battleOfSexes"
    assert load_task("battleofsexes").id == "battleOfSexes"


def test_every_builtin_task_loads():
    tasks = all_tasks()
    assert tasks and len({t.gym_id for t in tasks}) == len(tasks)


def test_unknown_task_lists_known_ones_and_closest():
    with pytest.raises(UnknownNameError) as info:
        load_task("battleOfSex")
    assert "battleOfSexes" in str(info.value) and "Did you mean" in str(info.value)


def test_training_commands_get_the_training_timeout():
    limits = load_task("battleOfSexes").limits
    assert limits.timeout_for("python train.py") == limits.training_timeout_s
    assert limits.timeout_for("ls -la") == limits.command_timeout_s


def test_own_format_task_folder(tiny_task: Path):
    spec = load_task_file(tiny_task)
    assert spec.id == "tiny" and spec.datasets[0].resolved_path() == tiny_task / "data"
    assert "tiny-data (read-only, at `data`)" in spec.prompt()
    assert spec.hidden_paths()[:2] == [tiny_task / "eval" / "secret.txt", tiny_task / "data" / "answers.csv"]
    assert spec.withheld_paths("validation") == [tiny_task / "data" / "answers.csv"]
    assert spec.withheld_paths("test") == [tiny_task / "data" / "val_answers.csv"]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _mlgym_repo(root: Path) -> Path:
    """A miniature MLGym layout: configs/tasks, configs/datasets, data/<task>/..."""
    _write(root / "data" / "coinFlip" / "evaluate.py", "print('{\"Score\": 1.0}')\n")
    _write(root / "data" / "coinFlip" / "strategy.py", "def guess(h):\n    return 0\n")
    _write(root / "data" / "coinFlip" / "flips" / "train.csv", "flip\n1\n")
    _write(
        root / "configs" / "datasets" / "flips.yaml",
        """\
        name: flips
        description: Coin flips.
        data_path: data/coinFlip/flips
        is_local: true
        train_split: {name: train, file_regex: train.csv}
        """,
    )
    return _write(
        root / "configs" / "tasks" / "coinFlip.yaml",
        """\
        id: coinFlip
        name: CoinFlip
        description: |-
          Guess the next flip. {dataset_docs}
        dataset_configs:
          - datasets/flips.yaml
        task_entrypoint: PythonSubmissionTasks
        training_timeout: 900
        use_generic_conda: true
        starter_code:
          - data/coinFlip/strategy.py
          - data/coinFlip/evaluate.py
        baseline_paths: [data/coinFlip/strategy.py]
        baseline_scores:
          - Score: 0.5
        evaluation_paths: [data/coinFlip/evaluate.py]
        evaluation_read_only: true
        memory_path: data/coinFlip/memory.json
        """,
    )


def test_mlgym_format_task_loads(tmp_path: Path):
    spec = load_task_file(_mlgym_repo(tmp_path))
    assert (spec.id, spec.name) == ("mlgym-coinFlip", "CoinFlip")  # its file's name, not MLGym's id
    assert spec.metric.name == "Score" and spec.metric.direction == "maximize"
    assert spec.baseline_score == 0.5
    assert spec.limits.training_timeout_s == 900 and spec.evaluation.timeout_s == 900
    assert spec.submission.artefacts == ["strategy.py"]
    assert [f.target for f in spec.starter_files] == ["strategy.py", "evaluate.py"]
    assert [f.read_only for f in spec.starter_files] == [False, True]
    assert spec.evaluation.command == "python evaluate.py"
    assert spec.datasets[0].name == "flips"
    assert spec.datasets[0].resolved_path() == (tmp_path / "data" / "coinFlip" / "flips").resolve()
    assert "Coin flips." in spec.prompt()


def test_mlgym_minimised_metric_direction(tmp_path: Path):
    path = _mlgym_repo(tmp_path)
    path.write_text(
        path.read_text().replace("Score: 0.5", "Time: 16.1").replace("PythonSubmissionTasks", "CSVSubmissionTasks")
    )
    spec = load_task_file(path)
    assert spec.metric.name == "Time" and spec.metric.direction == "minimize"
    assert spec.submission.artefacts == ["submission.csv"]


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (lambda t: t.replace("training_timeout: 900", "training_timeout: -5"), "training_timeout", "greater than 0"),
        (lambda t: t.replace("use_generic_conda: true", "use_generic_conda: true\nsurprise: 1"), "surprise", "unknown"),
        (lambda t: t.replace("id: coinFlip\n", ""), "id", "missing"),
    ],
)
def test_broken_mlgym_yaml_names_file_and_field(tmp_path: Path, edit, field, words):
    path = _mlgym_repo(tmp_path)
    path.write_text(edit(path.read_text()))
    with pytest.raises(TaskConfigError) as info:
        load_task_file(path)
    assert info.value.field == field
    assert str(path) in str(info.value) and words in str(info.value)


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (
            lambda t: t.replace("task_entrypoint: PythonSubmissionTasks", "task_entrypoint: Nope"),
            "task_entrypoint",
            "not one of",
        ),
        (lambda t: t.replace("  - datasets/flips.yaml", "  - datasets/missing.yaml"), "dataset_configs.0", "not found"),
    ],
)
def test_an_mlgym_task_missing_a_part_loads_but_cannot_run(tmp_path: Path, edit, field, words):
    """MLGym checkouts lack fetched data and carry stale configs: such a task is listed, and
    making its environment stops naming the file and the field."""
    path = _mlgym_repo(tmp_path)
    path.write_text(edit(path.read_text()))
    spec = load_task_file(path)
    assert [lack.field for lack in spec.unavailable] == [field]
    with pytest.raises(TaskConfigError) as info:
        spec.check_available()
    assert info.value.field == field
    assert str(path) in str(info.value) and words in str(info.value)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path):
    path = _write(tmp_path / "task.yaml", "id: x\nname: [unclosed\n")
    with pytest.raises(TaskConfigError) as info:
        load_task_file(path)
    assert str(path) in str(info.value) and "line" in str(info.value)


@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("direction: maximize", "direction: upwards", "metric.direction", "'maximize' or 'minimize'"),
        ("max_steps: 5", "max_steps: many", "limits.max_steps", "integer"),
        ("- accuracy: 0.5", "- r2: 0.5", "(top level)", "no value for the metric 'accuracy'"),
        ("src: starter/solve.py", "src: starter/nope.py", "starter_files.0.src", "does not exist"),
        ("data_path: data", "data_path: nodata", "datasets.0.data_path", "does not exist"),
        ("name: Tiny", "name: Tiny Task", "name", "letters, digits"),
        ("domain: testing", "domian: testing", "domian", "unknown field"),
        ("src: starter/solve.py", "src: eval/secret.txt", "starter_files.0.src", "hidden_files"),
        ("src: starter/solve.py", "src: eval", "starter_files.0.src", "hidden_files"),
        ("mount: data", "mount: data\n  - {name: sub, data_path: data, mount: data/extra}", "datasets", "overlap"),
        ("mount: data", "mount: data\n  - {name: more, data_path: data, mount: data/}", "datasets", "which overlap"),
    ],
)
def test_broken_task_yaml_names_file_and_field(tmp_path: Path, old, new, field, words):
    task = write_task(tmp_path)
    path = task / "task.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(TaskConfigError) as info:
        load_task_file(path)
    message = str(info.value)
    assert str(path) in message and words in message
    if field != "(top level)":
        assert info.value.field == field


def test_user_task_path_with_a_broken_folder(tmp_path: Path, monkeypatch):
    write_task(tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "task.yaml").write_text("id: [\n")
    monkeypatch.setenv("RESEARCHGYM_TASKS_PATH", str(tmp_path))
    errors: list = []
    ids = {t.id for t in all_tasks(errors=errors)}
    assert {"battleOfSexes", "tiny"} <= ids
    assert len(errors) == 1 and "broken/task.yaml" in str(errors[0])
    assert load_task("Tiny").id == "tiny"
    with pytest.raises(TaskConfigError):
        all_tasks()


def test_a_task_whose_extra_is_missing_says_what_to_install(tmp_path: Path):
    from researchgym.env import ResearchEnv

    task = write_task(tmp_path, extra_yaml="requirements: [definitely-not-installed-extra]\n")
    spec = load_task_file(task)
    assert spec.missing_requirements() == ["definitely-not-installed-extra"]
    with pytest.raises(TaskConfigError) as info:
        ResearchEnv(spec)
    # not an extra: named as the module it was checked as, not as an install command that cannot work
    assert "the Python module(s) definitely-not-installed-extra, which no researchgym extra provides" in str(info.value)
    assert info.value.field == "requirements"


def test_every_builtin_task_declares_direction_baseline_and_limits():
    for spec in all_tasks():
        assert spec.metric.direction in ("maximize", "minimize")
        assert spec.baseline_score is not None
        assert spec.limits.training_timeout_s > 0 and spec.limits.max_steps > 0
