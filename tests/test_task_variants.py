"""Task variants: `task.<variant>.yaml` beside `task.yaml`, merged over it with `extends`."""

from __future__ import annotations

import pytest
from conftest import write_task

import researchgym
from researchgym.errors import TaskConfigError
from researchgym.tasks.loader import load_task_file
from researchgym.tasks.registry import all_tasks


def test_a_variant_states_only_what_differs(tmp_path, monkeypatch):
    folder = write_task(tmp_path)
    (folder / "task.quick.yaml").write_text(
        "extends: task.yaml\nid: tiny-quick\nname: TinyQuick\nlimits:\n  max_steps: 3\n"
    )
    base, quick = load_task_file(folder / "task.yaml"), load_task_file(folder / "task.quick.yaml")
    assert (quick.id, quick.name, quick.limits.max_steps) == ("tiny-quick", "TinyQuick", 3)
    # Mappings merge key by key: the other limits and everything else come from task.yaml.
    assert quick.limits.command_timeout_s == base.limits.command_timeout_s
    assert quick.evaluation == base.evaluation and quick.description == base.description
    assert quick.source_dir == base.source_dir

    monkeypatch.setenv("RESEARCHGYM_TASKS_PATH", str(tmp_path))
    ids = {spec.id for spec in all_tasks(errors=[])}
    assert {base.id, "tiny-quick"} <= ids
    assert researchgym.load_task("tiny-quick").limits.max_steps == 3


@pytest.mark.parametrize(
    "extends, problem", [("missing.yaml", "does not exist"), ("task.loop.yaml", "loop"), ("[1, 2]", "must be the path")]
)
def test_a_broken_extends_names_the_field(tmp_path, extends, problem):
    folder = write_task(tmp_path)
    (folder / "task.loop.yaml").write_text(f"extends: {extends}\nid: x\nname: X\n")
    with pytest.raises(TaskConfigError) as caught:
        load_task_file(folder / "task.loop.yaml")
    assert caught.value.field == "extends" and problem in str(caught.value)


def test_a_variant_sees_a_change_to_the_file_it_extends(tmp_path, monkeypatch):
    import os

    folder = write_task(tmp_path)
    (folder / "task.quick.yaml").write_text("extends: task.yaml\nid: tiny-quick\nname: TinyQuick\n")
    monkeypatch.setenv("RESEARCHGYM_TASKS_PATH", str(tmp_path))
    assert researchgym.load_task("tiny-quick").limits.max_steps == 5
    base = folder / "task.yaml"
    base.write_text(base.read_text().replace("max_steps: 5", "max_steps: 12"))
    stat = base.stat()
    os.utime(base, (stat.st_atime, stat.st_mtime + 10))  # a later modification time, whatever the clock
    assert researchgym.load_task("tiny-quick").limits.max_steps == 12
