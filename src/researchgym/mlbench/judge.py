"""Judging an ML-Bench answer: three checks, each reported on its own.

1. **Arguments**, compared by meaning: the command is parsed by the repository's own parser
   (argparse or click/Typer, through argshim.py run in the sandbox with `python -c`), and every
   expected argument is compared with the parsed value by type (numbers as numbers, flags as
   booleans, lists element-wise, paths normalised), by destination or by option string. A program
   with neither falls back to a shell-word parser (`--k v`, `--k=v`, `-k v`, flags). Never
   substring matching (ML-Bench's "0" matched almost anything). Pipelines and redirections are
   understood: `cat x | prog --a 1 > out` runs prog with `--a 1`.
2. **Type**: a bash task needs a shell answer, a Python task Python code.
3. **Execution** in a bubblewrap sandbox holding a fresh copy of the repository, no network, a
   time limit: the sample's `setup` runs first, then the answer. A timeout is a failure (ML-Bench
   counted it as a pass); the exit status must be 0 and the expected files and output must appear.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from researchgym.mlbench.data import MLBenchError
from researchgym.mlbench.extract import PYTHON_TAGS, SHELL_TAGS
from researchgym.mlbench.schema import Sample
from researchgym.sandbox import Limits, SandboxSpec, create_sandbox

ARGSHIM = Path(__file__).with_name("argshim.py")
NOT_PROGRAMS = {"cd", "export", "set", "mkdir", "echo", "source", ".", "pip", "pip3", "ls", "cat", "conda",
                "rm", "cp", "mv", "touch", "wget", "curl", "git", "unset", "true", "head", "tail", "tee", "grep",
                "sort", "printf", "sed", "awk", "wc", "xargs"}
PREFIXES = {"time", "nohup", "env", "exec", "stdbuf"}  # run the command that follows them
TRUE = {"true", "1", "yes", "y", "on"}
FALSE = {"false", "0", "no", "n", "off"}
SETUP_TIMEOUT_S = 300.0
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@dataclass
class Check:
    passed: bool
    detail: str = ""


@dataclass
class Judgment:
    sample: str
    arguments: Check
    type: Check
    execution: Check
    parsed: dict[str, Any] = field(default_factory=dict)
    parser: str = ""

    @property
    def passed(self) -> bool:
        return self.arguments.passed and self.type.passed and self.execution.passed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


# ------------------------------------------------------------------ commands
def _logical_lines(code: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", code)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


SEPARATORS = {"&&", "||", ";", "|", "|&", "&", "(", ")", ";;"}
OPERATOR_CHARS = set("|&;<>()")
_FD_BEFORE_REDIRECT = re.compile(r"(?:(?<=\s)|^)\d+(?=[<>])")


def _shell_tokens(line: str) -> list[tuple[str, bool]]:
    """(text, is_operator) of a shell line: quotes and backslashes as bash reads them, runs of
    `|&;<>()` outside quotes as operators. An unclosed quote raises ValueError."""
    tokens: list[tuple[str, bool]] = []
    word: list[str] = []
    in_word = False
    index = 0
    while index < len(line):
        char = line[index]
        if char in "'\"":
            close = index + 1
            while close < len(line) and line[close] != char:
                close += 2 if char == '"' and line[close] == "\\" else 1
            if close >= len(line):
                raise ValueError(f"no closing quotation in {line!r}")
            body = line[index + 1:close]
            word.append(body if char == "'" else re.sub(r'\\([\\"$`])', r"\1", body))
            in_word, index = True, close + 1
        elif char == "\\" and index + 1 < len(line):
            word.append(line[index + 1])
            in_word, index = True, index + 2
        elif char.isspace() or char in OPERATOR_CHARS:
            if in_word:
                tokens.append(("".join(word), False))
                word, in_word = [], False
            if char in OPERATOR_CHARS:
                end = index
                while end < len(line) and line[end] in OPERATOR_CHARS:
                    end += 1
                tokens.append((line[index:end], True))
                index = end
            else:
                index += 1
        else:
            word.append(char)
            in_word, index = True, index + 1
    if in_word:
        tokens.append(("".join(word), False))
    return tokens


def shell_commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line, each as its words: split at `&&`, `||`, `;`, pipes
    and `&`, with redirections (`> f`, `2>&1`, `< f`, `<<EOF`) and their targets dropped."""
    commands: list[list[str]] = [[]]
    tokens = iter(_shell_tokens(_FD_BEFORE_REDIRECT.sub("", line)))
    for text, operator in tokens:
        if operator and text in SEPARATORS:
            commands.append([])
        elif operator and set(text) <= set("<>&|"):
            next(tokens, None)  # the redirection's target (a file, a descriptor, a heredoc word)
        elif not operator:
            commands[-1].append(text)
    return [words for words in commands if words]


def find_invocation(code: str) -> tuple[str, str, list[str], str] | None:
    """(mode, target, argv, cd) of the command that runs the program: `python x.py ...` is a
    script, `python -m m ...` a module, anything else a console program; `cd` before it is kept.
    Pipelines count (`cat x | prog ...` runs prog) and redirections are not arguments."""
    cd = ""
    for line in _logical_lines(code):
        try:
            commands = shell_commands(line)
        except ValueError:
            continue
        for words in commands:
            while words and (words[0] in PREFIXES or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0])):
                words = words[1:]  # VAR=value and `time`-like prefixes
            if not words:
                continue
            if words[0] == "cd" and len(words) > 1:
                cd = os.path.normpath(os.path.join(cd, words[1]))
                continue
            if words[0] in NOT_PROGRAMS:
                continue
            program = os.path.basename(words[0])
            if re.fullmatch(r"python[0-9.]*", program):
                rest = words[1:]
                while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c"):
                    rest = rest[1:]  # interpreter options such as -u
                if len(rest) >= 2 and rest[0] == "-m":
                    return "module", rest[1], rest[2:], cd
                if rest and rest[0].endswith(".py"):
                    return "script", rest[0], rest[1:], cd
                continue
            return "console", program, words[1:], cd
    return None


def shell_words(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Options and positionals the plain way: `--k v`, `--k=v`, `-k v`, repeated values, flags."""
    options: dict[str, Any] = {}
    positional: list[str] = []
    index = 0
    number = re.compile(r"-?\d+(\.\d*)?([eE]-?\d+)?$")
    while index < len(argv):
        word = argv[index]
        if word.startswith("-") and not number.match(word) and word not in ("-", "--"):
            name, eq, value = word.lstrip("-").partition("=")
            if eq:
                options[name] = value
            else:
                values = []
                while index + 1 < len(argv) and (not argv[index + 1].startswith("-") or number.match(argv[index + 1])):
                    index += 1
                    values.append(argv[index])
                options[name] = values[0] if len(values) == 1 else (values or True)
        else:
            positional.append(word)
        index += 1
    return options, positional


def _key(name: str) -> str:
    return name.strip().lstrip("-").lower().replace("-", "_")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def same_value(expected: str, actual: Any) -> bool:
    """Whether a parsed value means the expected text, compared by the parsed value's type."""
    text = expected.strip().strip("'\"")
    if actual is None:
        return text.lower() in ("none", "null", "")
    if isinstance(actual, bool):
        return (text.lower() in TRUE) if actual else (text.lower() in FALSE)
    if isinstance(actual, (int, float)):
        wanted = _number(text)
        return wanted is not None and math.isclose(wanted, float(actual), rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(actual, list):
        parts = text.replace(",", " ").split()
        return len(parts) == len(actual) and all(same_value(p, a) for p, a in zip(parts, actual))
    actual_text = str(actual).strip()
    a, b = _number(text), _number(actual_text)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if "/" in text or "/" in actual_text:
        return os.path.normpath(text) == os.path.normpath(actual_text)
    return text == actual_text


def compare_arguments(expected: dict[str, str], parsed: dict[str, Any], positional: list[str],
                      aliases: dict[str, str] | None = None) -> Check:
    """Every expected argument against the parsed values. `aliases` maps the parser's option
    strings to their destinations (sacrebleu's `--smooth-method` is stored as `bleu_smooth_method`),
    so an expected key may be written either way."""
    values = {_key(k): v for k, v in parsed.items()}
    aliases = {_key(k): _key(v) for k, v in (aliases or {}).items()}
    problems = []
    for name, wanted in expected.items():
        key = _key(name)
        if key not in values and aliases.get(key) in values:
            key = aliases[key]
        if key in values:
            if not same_value(wanted, values[key]):
                problems.append(f"{name}: expected {wanted!r}, got {values[key]!r}")
        elif not any(same_value(wanted, word) for word in positional):
            problems.append(f"{name}: not set (expected {wanted!r})")
    return Check(not problems, "; ".join(problems) or f"all {len(expected)} arguments match")


# ---------------------------------------------------------------------- type
def looks_like_python(code: str) -> bool:
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    if not tree.body:
        return False
    plain = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AugAssign, ast.With,
             ast.For, ast.If, ast.Try, ast.While, ast.AnnAssign)
    return any(isinstance(node, plain) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
               for node in tree.body)


def type_check(sample: Sample, language: str, code: str) -> Check:
    python_like = looks_like_python(code)
    if sample.is_bash:
        if language in PYTHON_TAGS or (python_like and language not in SHELL_TAGS) or (python_like and "\n" in code):
            return Check(False, f"a bash task got Python code (block tagged {language or 'nothing'})")
        return Check(True, "bash")
    if language in SHELL_TAGS or not python_like:
        return Check(False, f"a Python task got a shell answer (block tagged {language or 'nothing'})")
    return Check(True, "python")


# ------------------------------------------------------------------ the judge
class Judge:
    """Judges answers to samples of one repository tree (copied afresh for every answer)."""

    def __init__(self, repo_dir: Path, *, sandbox: str = "bwrap", memory_mb: int = 4096) -> None:
        self.repo_dir = Path(repo_dir)
        self.sandbox = sandbox
        self.memory_mb = memory_mb

    def judge(self, sample: Sample, language: str, code: str) -> Judgment:
        kind = type_check(sample, language, code)
        with tempfile.TemporaryDirectory(prefix="mlbench-judge-") as tmp:
            workspace = Path(tmp) / "repo"
            shutil.copytree(self.repo_dir, workspace, symlinks=True)
            box = self._sandbox(workspace, sample)
            try:
                execution = self._execute(box, workspace, sample, code)
                # after the execution: a program without a parser we can stop runs in full here
                arguments, parsed, parser = self._arguments(box, workspace, sample, code)
            finally:
                box.close()
        return Judgment(sample.key, arguments, kind, execution, parsed, parser)

    # -------------------------------------------------------------- internals
    def _sandbox(self, workspace: Path, sample: Sample):
        limits = Limits(command_timeout_s=sample.timeout_s, memory_mb=self.memory_mb, max_processes=512,
                        max_output_chars=20_000)
        spec = SandboxSpec(workspace=workspace, limits=limits,
                           env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            box = create_sandbox(self.sandbox, spec)
            box.start()
        return box

    @staticmethod
    def _folder(box, sample: Sample, cd: str = "") -> str:
        """The sample's folder as commands inside `box` see it (the sandbox says where its workspace is)."""
        return shlex.quote(os.path.normpath(os.path.join(box.workspace_path, sample.path, cd)))

    def _arguments(self, box, workspace: Path, sample: Sample, code: str) -> tuple[Check, dict[str, Any], str]:
        found = find_invocation(code)
        if found is None:
            return Check(False, "no command that runs a program was found in the answer"), {}, ""
        mode, target, argv, cd = found
        command = (f"cd {self._folder(box, sample, cd)} && python -c {shlex.quote(ARGSHIM.read_text())} "
                   f"{mode} {shlex.quote(target)} " + " ".join(shlex.quote(a) for a in argv))
        result = box.run(command, timeout_s=60)
        line = next((ln for ln in reversed(result.output.splitlines()) if ln.startswith("@@argshim ")), None)
        payload = json.loads(line[len("@@argshim "):]) if line else {"no_parser": True}
        parser = payload.get("parser", "argparse")
        if "error" in payload:
            return Check(False, payload["error"]), {}, parser
        if "namespace" in payload:
            # arguments the parser left to the program (spaCy's `--paths.train x` config
            # overrides, parse_known_args extras) are read as shell words
            extra, extra_positional = shell_words(payload.get("unknown") or [])
            parsed = {**extra, **payload["namespace"]}
            check = compare_arguments(sample.arguments, parsed, extra_positional, payload.get("options"))
            return check, parsed, parser
        options, positional = shell_words(argv)
        check = compare_arguments(sample.arguments, options, positional)
        return check, {**options, "_positional": positional}, "shell words"

    def _execute(self, box, workspace: Path, sample: Sample, code: str) -> Check:
        folder = workspace / sample.path
        if not folder.is_dir():
            return Check(False, f"the task's folder {sample.path} does not exist in the repository")
        if sample.setup.strip():
            (folder / ".researchgym-setup.sh").write_text(sample.setup)
            setup = box.run(f"cd {self._folder(box, sample)} && bash .researchgym-setup.sh", timeout_s=SETUP_TIMEOUT_S)
            if setup.timed_out or setup.exit_code != 0:
                raise MLBenchError(f"the setup of sample {sample.key} failed (not the answer's fault): "
                                   f"{setup.output[-500:]}")
        if sample.is_bash:
            (folder / ".researchgym-answer.sh").write_text(code + "\n")
            command = f"cd {self._folder(box, sample)} && bash .researchgym-answer.sh"
        else:
            (folder / ".researchgym-answer.py").write_text((sample.prefix_code + "\n" + code).strip() + "\n")
            command = f"cd {self._folder(box, sample)} && python .researchgym-answer.py"
        result = box.run(command, timeout_s=sample.timeout_s)
        if result.timed_out:
            return Check(False, f"timed out after {sample.timeout_s:g} s (a timeout is not a pass)")
        if result.exit_code != 0:
            return Check(False, f"exit status {result.exit_code}: {result.output.strip()[-400:]}")
        missing = [name for name in sample.expected_outputs if not (folder / name).exists()]
        if missing:
            return Check(False, f"exit status 0 but the expected output(s) {missing} were not created")
        if sample.expected_stdout and not re.search(sample.expected_stdout, ANSI.sub("", result.output), re.MULTILINE):
            return Check(False, f"exit status 0 but the output does not match {sample.expected_stdout!r}")
        return Check(True, "exit status 0" + (f", created {sample.expected_outputs}" if sample.expected_outputs else ""))
