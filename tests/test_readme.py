"""README.md runs as printed: its commands and snippets, in order, in a scratch folder.

A new user pastes the README's blocks one after another, so the test does the same: every fenced
block, in order, in one scratch folder that holds a `.venv` link to the clone's virtual
environment (the README's commands say `.venv/bin/researchgym`), with `.venv/bin` first on PATH.
State carries over, as it would for the user: a run folder one block makes is there for the next.

How each block is treated, by its info string:

* `sh`, `bash`, `shell`: run with `bash -e`; `console`: its `$ ` lines, the same way;
* `python`: written to a file in the scratch folder and run with `.venv/bin/python` (a file, not
  `-c`: `make_vec` starts its processes with spawn, which imports the main script again);
* anything else (`text`, `yaml`, `csv`, `jsonl`, untagged: agent commands, the module map) is an
  illustration and is not run; it must not hold a command the user would run.

An HTML comment on the line just before a block changes that:

* `<!-- readme-test: skip: REASON -->`: not run here (it needs an API key, a GPU, the network, a
  person at the terminal, or builds the virtual environment); the reason is required;
* `<!-- readme-test: file PATH -->`: the block is a file the next blocks use (a replies file, a
  model class, a CSV), written to PATH in the scratch folder instead of being run.

The other tests here keep the README current without running anything: every built-in task is
in its task table, every module of the package in its architecture map.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PACKAGE = ROOT / "src" / "researchgym"

SHELL_LANGUAGES = {"sh", "bash", "shell", "console"}
RUNNABLE_LANGUAGES = SHELL_LANGUAGES | {"python"}
#: What a user would run, at the start of a line: such a line belongs in a tagged block.
COMMAND_LINE = re.compile(r"^\s*(\$ )?(\.venv/bin/|researchgym |make |PYTHONPATH=)")
#: Placeholders a user cannot paste (`runs/run-...`, `trajectories/.../x.jsonl`).
PLACEHOLDER = re.compile(r"\.\.\./|/\.\.\.|run-\.\.\.|<[a-z_ -]+>")
DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(?P<body>.*?)\s*-->\s*$")
BLOCK_TIMEOUT_S = 300


@dataclass
class Block:
    line: int  # of the opening fence, from 1
    language: str
    text: str
    directive: str | None  # the comment's body: "skip: ...", "file PATH", or None

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.language or 'untagged'} block)"

    @property
    def skip_reason(self) -> str | None:
        if self.directive is None or not self.directive.startswith("skip"):
            return None
        return self.directive[len("skip") :].lstrip(":").strip()

    @property
    def file(self) -> str | None:
        if self.directive is None or not self.directive.startswith("file "):
            return None
        return self.directive[len("file ") :].strip()


def fenced_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text (CommonMark fences: three or more backticks or
    tildes, closed by a fence of the same character at least as long), with the readme-test
    comment on the line just before each."""
    lines = text.split("\n")
    blocks = []
    index = 0
    while index < len(lines):
        opening = re.match(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$", lines[index])
        if not opening:
            index += 1
            continue
        fence, language = opening.group(1), opening.group(2).lower()
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        previous = DIRECTIVE.match(lines[index - 1]) if index else None
        body = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(index + 1, language, body, previous.group("body") if previous else None))
        index = end + 1
    return blocks


def readme_blocks() -> list[Block]:
    return fenced_blocks(README.read_text(encoding="utf-8"))


def test_fence_parser_reads_nested_fences_and_directives() -> None:
    text = "\n".join(
        [
            "<!-- readme-test: file replies.txt -->",
            "````text",
            "```",
            "ls",
            "```",
            "````",
            "",
            "```sh",
            "echo hi",
            "```",
        ]
    )
    first, second = fenced_blocks(text)
    assert (first.language, first.file, first.text) == ("text", "replies.txt", "```\nls\n```\n")
    assert (second.language, second.directive, second.text, second.line) == ("sh", None, "echo hi\n", 8)


def test_every_block_is_runnable_or_marked() -> None:
    """The rules the slow test relies on, checked without running anything."""
    problems = []
    blocks = readme_blocks()
    assert any(block.language in RUNNABLE_LANGUAGES and block.directive is None for block in blocks)
    for block in blocks:
        if block.directive is not None:
            if block.skip_reason is None and block.file is None:
                problems.append(f"{block.where}: unknown readme-test directive '{block.directive}'")
            if block.skip_reason == "":
                problems.append(f"{block.where}: a skip needs a reason (<!-- readme-test: skip: WHY -->)")
            if block.file is not None:
                path = PurePosixPath(block.file)
                if not block.file or path.is_absolute() or ".." in path.parts:
                    problems.append(f"{block.where}: the file must be a relative path inside the folder")
            if block.skip_reason is not None and block.language not in RUNNABLE_LANGUAGES:
                problems.append(f"{block.where}: only a runnable block can be skipped")
        if block.language not in RUNNABLE_LANGUAGES and block.file is None:
            for number, line in enumerate(block.text.splitlines(), start=block.line + 1):
                if COMMAND_LINE.match(line):
                    problems.append(f"README.md:{number}: a command in a {block.where}: tag the block sh")
        if block.language in RUNNABLE_LANGUAGES and block.skip_reason is None and block.file is None:
            for number, line in enumerate(block.text.splitlines(), start=block.line + 1):
                code = line.split("#", 1)[0]  # a comment may name a placeholder
                if PLACEHOLDER.search(code):
                    problems.append(f"README.md:{number}: a placeholder in a runnable block: {line.strip()}")
    assert not problems, "\n".join(problems)


def test_no_stale_install_hints() -> None:
    """researchgym is installed from its clone: `pip install 'researchgym[...]'` cannot work, and
    `make install-extras` is gone (it is `make install EXTRAS=...`)."""
    stale = re.compile(r"install-extras|pip install ['\"]?researchgym\[")
    for path in [README, ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            assert not stale.search(line), f"{path.relative_to(ROOT)}:{number}: {line.strip()}"


def test_readme_describes_every_builtin_task() -> None:
    from researchgym.tasks.registry import all_tasks

    rows = {
        line.split("|")[1].strip()
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and line.count("|") > 2
    }
    builtin = [spec for spec in all_tasks() if PACKAGE / "tasks" / "builtin" in spec.config_path.parents]
    assert len(builtin) >= 18
    missing = sorted(spec.id for spec in builtin if spec.id not in rows)
    assert not missing, f"tasks missing from the README's task table: {', '.join(missing)}"


def architecture_map() -> set[str]:
    """The module paths (relative to src/researchgym) named in the README's module map: entries
    are `name.py` or `folder/` at two spaces a level; deeper-indented lines continue an entry."""
    [block] = [b for b in readme_blocks() if b.text.startswith("src/researchgym/\n")]
    named: set[str] = set()
    folders: list[tuple[int, str]] = []  # (indent, folder) of the entries above this one
    for line in block.text.splitlines()[1:]:
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent == 0 or indent >= 20:
            continue  # blank, a top-level folder of the clone, or a continuation line
        while folders and folders[-1][0] >= indent:
            folders.pop()
        token = line.split()[0]
        prefix = "/".join(folder for _, folder in folders)
        path = f"{prefix}/{token}" if prefix else token
        if token.endswith("/"):
            folders.append((indent, token.rstrip("/")))
        elif token.endswith(".py"):
            named.add(path)
    return named


def test_architecture_lists_every_module() -> None:
    modules = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if "builtin" not in path.relative_to(PACKAGE).parts
    }
    named = architecture_map()
    # A subpackage's __init__ may stand under its folder's line (the map lists those that hold
    # a registry or the app); every other module needs a line of its own.
    required = {m for m in modules if not m.endswith("/__init__.py")}
    missing = sorted(required - named)
    assert not missing, f"modules missing from the README's Architecture map: {', '.join(missing)}"
    gone = sorted(named - modules)
    assert not gone, f"the README's Architecture map names modules that do not exist: {', '.join(gone)}"


def _scratch_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "clone"
    folder.mkdir()
    venv = ROOT / ".venv"
    if not (venv / "bin" / "researchgym").exists():
        pytest.skip(f"no virtual environment at {venv} (make test creates it)")
    (folder / ".venv").symlink_to(venv, target_is_directory=True)
    return folder


def _run(command: list[str], folder: Path, env: dict[str, str]) -> tuple[int | None, str]:
    """Run a block's command in its own process group; on a timeout, kill the whole group."""
    process = subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return None, output
    return process.returncode, output


def _console_commands(text: str) -> str:
    return "".join(line[2:] + "\n" for line in text.splitlines() if line.startswith("$ "))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_readme_runs_as_printed(tmp_path: Path) -> None:
    folder = _scratch_folder(tmp_path)
    env = {**os.environ, "PATH": f"{folder / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    ran = []
    for block in readme_blocks():
        if block.file is not None:
            target = folder / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
            continue
        if block.language not in RUNNABLE_LANGUAGES or block.skip_reason is not None:
            continue
        if block.language == "python":
            script = folder / f"readme_block_{block.line}.py"
            script.write_text(block.text, encoding="utf-8")
            command = [".venv/bin/python", script.name]
        else:
            text = _console_commands(block.text) if block.language == "console" else block.text
            command = ["bash", "-e", "-c", text]
        started = time.monotonic()
        status, output = _run(command, folder, env)
        ran.append(f"{block.where}: {time.monotonic() - started:.1f}s")
        if status != 0:
            what = f"timed out after {BLOCK_TIMEOUT_S}s" if status is None else f"exited {status}"
            pytest.fail(
                f"{block.where} {what}; run it as printed, or mark it "
                f"<!-- readme-test: skip: WHY --> if it cannot run here.\n--- block ---\n{block.text}"
                f"--- output (last 4000 characters) ---\n{output[-4000:]}",
                pytrace=False,
            )
    print("\n".join(ran))
    assert len(ran) >= 10
