"""Config fuzzing: hypothesis writes task YAMLs (broken in every way a person might break one)
and command lines; each must give a clear researchgym error naming the problem, never a
traceback."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import yaml
from conftest import write_task
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from researchgym.cli import app
from researchgym.errors import ResearchGymError
from researchgym.tasks.registry import load_task
from researchgym.viewer import ViewerServer

FIELDS = [
    "id",
    "name",
    "description",
    "datasets",
    "starter_files",
    "baseline",
    "evaluation",
    "metric",
    "submission",
    "hidden_files",
    "limits",
    "requires",
    "domain",
    "extends",
    "variants",
    "bogus",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=True), st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(FIELDS + ["name", "path", "command", "timeout_s", "direction", "max_steps", "src"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _base(tmp_path: Path) -> dict:
    task = write_task(tmp_path / "base")
    return yaml.safe_load((task / "task.yaml").read_text())


@FUZZ
@given(data=st.data())
def test_a_mutated_task_yaml_loads_or_names_what_is_wrong(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("fuzz")
    spec = _base(root)
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(FIELDS))
        if data.draw(st.booleans()) and key in spec:
            del spec[key]
        else:
            spec[key] = data.draw(values)
    folder = root / "base" / "tiny"
    (folder / "task.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    try:
        load_task(folder)
    except ResearchGymError as exc:
        assert "task.yaml" in str(exc) or "task" in str(exc), exc


@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_as_a_task_yaml_loads_or_names_the_file(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("text") / "t"
    folder.mkdir()
    (folder / "task.yaml").write_text(text)
    try:
        load_task(folder)
    except ResearchGymError as exc:
        assert "task.yaml" in str(exc), exc


WORDS = st.sampled_from(
    [
        "run",
        "tasks",
        "report",
        "view",
        "aup",
        "tools",
        "prepare",
        "mlbench",
        "llm",
        "agent",
        "--agent",
        "--model",
        "--seeds",
        "--suite",
        "--max-steps",
        "--sandbox",
        "--out",
        "--resume",
        "--executor",
        "--memory-scope",
        "--literature-corpus",
        "--port",
        "--export",
        "--best",
        "--setting",
        "--data",
        "-k",
        "nope",
        "-1",
        "0",
        "1e9",
        "",
        "..",
        "/nonexistent",
        "ray",
        "bogus-task",
        "\x00",
        "💥",
        "--help",
    ]
)


@settings(max_examples=120, deadline=None)
@given(argv=st.lists(WORDS, min_size=1, max_size=6))
def test_command_lines_end_with_a_message_never_a_traceback(argv):
    if "run" in argv and "--help" not in argv and not any(a in argv for a in ("bogus-task", "nope", "..", "")):
        argv = [*argv, "--resume", "/nonexistent"]  # never start real episodes here
    # `view` on a folder that exists ("", "..") serves until Ctrl-C: here it stops at once, as
    # Ctrl-C would, so that an example (or a shrink of one) never hangs the suite.
    with mock.patch.object(ViewerServer, "serve_forever", side_effect=KeyboardInterrupt):
        result = CliRunner().invoke(app, argv, env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{argv!r} raised {type(result.exception).__name__}: {result.exception}\n{result.output}")
    assert "Traceback" not in result.output, (argv, result.output)


def test_the_known_bad_configs_have_precise_messages(tmp_path):
    task = write_task(tmp_path / "t")
    text = (task / "task.yaml").read_text()
    for old, new, words in (
        ("direction: maximize", "direction: upwards", ["metric", "direction"]),
        ("max_steps: 5", "max_steps: -3", ["max_steps"]),
        ("timeout_s: 60", "timeout_s: soon", ["timeout_s"]),
        ("artefacts: [submission.csv]", "artefacts: submission.csv, more", ["artefacts"]),
    ):
        assert old in text, old
        (task / "task.yaml").write_text(text.replace(old, new))
        with pytest.raises(ResearchGymError) as caught:
            load_task(task)
        assert all(word in str(caught.value) for word in words), (new, str(caught.value))
        assert "task.yaml" in str(caught.value)
