"""Judging an ML-Bench answer: three checks, each reported on its own. The strict judge (the
default) judges what ran, not what was written.

1. **Arguments.** While the answer runs, a hook (runhook.py, installed as `sitecustomize` on
   PYTHONPATH for that run only) records in every Python process the first parse of its
   argument parser (argparse, or click/Typer): which program called it (module or file relative
   to the workspace, and function), the working folder, the parsed values, the parser's
   defaults and option strings. The gold's own program is parsed through the same hook (stopped
   at the parse; once per sample). The target program must have run (a command in a heredoc, in
   an untaken `true ||` branch, behind a function shadowing `python`, or another script taking
   the same arguments, never ran it); each of its runs must give every expected argument its
   value, compared by type (numbers as numbers, flags as booleans, lists element-wise, paths
   resolved against the folder each program ran in, so `cd .. && ... scripts/x.txt` and
   `$PWD/x.txt` are `x.txt`), and no option may differ from both the gold's value and the
   parser's default unless the sample lists it in `free_arguments` (so `--lowercase` added to a
   BLEU computation fails). Never substring matching (ML-Bench's "0" matched almost anything).
   The written command is still read (pipelines, redirections, `timeout`/`nice`/`env`/`time`
   wrappers) for messages, and is the verdict only where no parser can be watched (a console
   program reading sys.argv itself): then argshim.py parses it with the program's parser.
   A **Python task's** answer runs through pyanswer.py, which records every call its own code
   makes as it runs (callee, arguments named by the callee's signature): the answer must call
   the library the gold uses (its imports, less general helpers such as numpy), and every
   expected argument must have reached a parameter of that name in a library call that ran (or
   be that parameter's default), so a value in dead code or in a comment does not count.
2. **Type**: a bash task needs a shell answer, a Python task Python code.
3. **Execution** in a sandbox (bubblewrap by default; the working folder comes from the sandbox)
   holding a fresh copy of the repository, no network, a time limit: the sample's `setup` runs
   first, then the answer. A timeout is a failure (ML-Bench counted it as a pass); the exit
   status must be 0; every expected file must be new or changed since the setup (size, sha256,
   mtime) and hold what the program left at its exit (so a file touched, echoed or copied after a
   failed run does not count); expected output must be printed by the program's own process
   (captured at the file-descriptor level by the hook), not by an `echo`; in a Python answer,
   text a `print` made of constants written in the answer does not count either.

The hook's evidence reaches the judge over a socket, from processes the judge has identified
from outside the sandbox (evidence.py, with strace on the host: sandbox/exectrace.py); the
target's records count only from a process started to run the gold's program, and each judged
process must have run the repository's code as it was before the answer ran (its hook reports
every code object it runs from a writable place), so an answer cannot forge a run by sending
records, running a changed or planted program, or writing into the program's output.

`Judge(..., mode="original")` applies ML-Bench's published rules instead (see `Judge`).
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import posixpath
import re
import secrets
import shlex
import shutil
import stat
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from researchgym.errors import SandboxError
from researchgym.extras import install_hint
from researchgym.mlbench.data import ANSWER_KEYS, MLBenchError
from researchgym.mlbench.evidence import Evidence, Watch, code_roots, code_snapshot, tampering
from researchgym.mlbench.extract import PYTHON_TAGS, SHELL_TAGS
from researchgym.mlbench.runhook import ENV as HOOK_ENV
from researchgym.mlbench.schema import Sample
from researchgym.mlbench.setupcache import SetupCapture, tree_state
from researchgym.sandbox import Limits, Mount, SandboxSpec, create_sandbox

ARGSHIM = Path(__file__).with_name("argshim.py")
RUNHOOK = Path(__file__).with_name("runhook.py")
PYANSWER = Path(__file__).with_name("pyanswer.py")
PYANSWER_MODULE = "researchgym_pyanswer"  # the name pyanswer.py has in the judging sandbox
#: Libraries a gold may import that are not what a Python task is about (the calls into the
#: library the task is about are the ones that count).
GENERAL_LIBRARIES = {"numpy", "joblib", "pandas", "scipy", "matplotlib", "PIL", "tqdm", "yaml"}
NOT_PROGRAMS = {
    "cd",
    "export",
    "set",
    "mkdir",
    "echo",
    "source",
    ".",
    "pip",
    "pip3",
    "ls",
    "cat",
    "conda",
    "rm",
    "cp",
    "mv",
    "touch",
    "wget",
    "curl",
    "git",
    "unset",
    "true",
    "head",
    "tail",
    "tee",
    "grep",
    "sort",
    "printf",
    "sed",
    "awk",
    "wc",
    "xargs",
}
PREFIXES = {"time", "nohup", "env", "exec", "stdbuf", "nice", "timeout"}  # run the command that follows them
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")
_WITH_VALUE = {
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "nice": {"-n", "--adjustment"},
    "env": {"-u", "--unset", "-C", "--chdir", "-S", "--split-string"},
    "stdbuf": {"-i", "-o", "-e"},
}
TRUE = {"true", "1", "yes", "y", "on"}
FALSE = {"false", "0", "no", "n", "off"}
SETUP_TIMEOUT_S = 300.0
#: The offline suite's programs, as their modules are named (the `mlbench` extra installs them).
MLBENCH_EXTRA_MODULES = ("gensim", "sacrebleu", "spacy", "tokenizers", "sklearn")
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
    #: "strict" (what ran) or "original" (ML-Bench's published rules).
    mode: str = "strict"

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
            body = line[index + 1 : close]
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


def strip_wrappers(words: list[str]) -> list[str]:
    """The command a wrapper runs: `VAR=v`, `time [-p]`, `nohup`, `exec`, `env [-u X] [VAR=v]`,
    `nice [-n N]`, `timeout [-s SIG] [-k D] DURATION`, `stdbuf -oL` are taken off the front."""
    while words:
        if _ASSIGNMENT.fullmatch(words[0]):
            words = words[1:]
            continue
        wrapper = words[0]
        if wrapper not in PREFIXES:
            break
        words = words[1:]
        takes = _WITH_VALUE.get(wrapper, set())
        while words and (words[0].startswith("-") or (wrapper == "env" and _ASSIGNMENT.fullmatch(words[0]))):
            option = words[0]
            words = words[1:]
            if option in takes and words:
                words = words[1:]
        if wrapper == "timeout" and words:
            words = words[1:]  # the duration
    return words


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
            words = strip_wrappers(words)
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


def compare_arguments(
    expected: dict[str, str], parsed: dict[str, Any], positional: list[str], aliases: dict[str, str] | None = None
) -> Check:
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
    plain = (
        ast.Import,
        ast.ImportFrom,
        ast.FunctionDef,
        ast.ClassDef,
        ast.Assign,
        ast.AugAssign,
        ast.With,
        ast.For,
        ast.If,
        ast.Try,
        ast.While,
        ast.AnnAssign,
    )
    return any(
        isinstance(node, plain) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))
        for node in tree.body
    )


def type_check(sample: Sample, language: str, code: str) -> Check:
    python_like = looks_like_python(code)
    if sample.is_bash:
        if language in PYTHON_TAGS or (python_like and language not in SHELL_TAGS) or (python_like and "\n" in code):
            return Check(False, f"a bash task got Python code (block tagged {language or 'nothing'})")
        return Check(True, "bash")
    if language in SHELL_TAGS or not python_like:
        return Check(False, f"a Python task got a shell answer (block tagged {language or 'nothing'})")
    return Check(True, "python")


# ------------------------------------------------------------ what ran (the hook's log)
MISSING = object()


def _inside(value: str, workspace: str) -> str:
    """A path as seen in the sandbox, with the workspace written `@ws` (so judgments of
    different copies, and of different sandboxes, compare); absolute, so joining keeps it."""
    root = workspace.rstrip("/")
    if value == root or value.startswith(root + "/"):
        return "/@ws" + value[len(root) :]
    return value


def _resolve(cwd: str, value: str, workspace: str) -> str:
    return posixpath.normpath(posixpath.join(cwd, _inside(value, workspace)))


def same_parsed(a: Any, b: Any, cwd_a: str, cwd_b: str, workspace: str) -> bool:
    """Whether two parsed values mean the same: equal, numerically equal, or (text) the same
    path once each is resolved against the folder its program ran in."""
    if a == b and type(a) is type(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_parsed(x, y, cwd_a, cwd_b, workspace) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    na, nb = (
        _number(a) if not isinstance(a, (list, dict)) else None,
        _number(b) if not isinstance(b, (list, dict)) else None,
    )
    if na is not None and nb is not None:
        return math.isclose(na, nb, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, str) and isinstance(b, str) and a and b:
        return _resolve(cwd_a, a, workspace) == _resolve(cwd_b, b, workspace)
    return False


def _expected_matches(expected: str, actual: Any, cwd_e: str, cwd_a: str, workspace: str) -> bool:
    if same_value(expected, actual):
        return True
    text = expected.strip().strip("'\"")
    if isinstance(actual, str) and text:
        return _resolve(cwd_e, text, workspace) == _resolve(cwd_a, actual, workspace)
    if isinstance(actual, list) and all(isinstance(x, str) for x in actual):
        parts = text.replace(",", " ").split()
        return len(parts) == len(actual) and all(
            _expected_matches(p, x, cwd_e, cwd_a, workspace) for p, x in zip(parts, actual)
        )
    return False


def _flat(record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A parse record's values by normalised key: the namespace, and the arguments the parser
    left to the program (spaCy's `--paths.train x`) read as shell words."""
    extra, positional = shell_words(record.get("unknown") or [])
    values = {_key(k): v for k, v in extra.items()}
    values.update({_key(k): v for k, v in (record.get("namespace") or {}).items()})
    return values, positional


def compare_runs(sample: Sample, ran: dict[str, Any], gold: dict[str, Any], workspace: str) -> list[str]:
    """What is wrong with the arguments one run of the target program parsed, against the
    gold's parse: an expected argument with another value, or any option whose value differs
    from the gold's and from the parser's default (unless the sample lists it as free)."""
    values, positional = _flat(ran)
    gold_values, _ = _flat(gold)
    defaults = {_key(k): v for k, v in (ran.get("defaults") or {}).items()}
    options = {**(gold.get("options") or {}), **(ran.get("options") or {})}
    aliases = {_key(k): _key(v) for k, v in options.items()}
    cwd, gold_cwd = _inside(ran.get("cwd", ""), workspace), _inside(gold.get("cwd", ""), workspace)
    problems = []
    for name, wanted in sample.arguments.items():
        key = _key(name)
        if key not in values and aliases.get(key) in values:
            key = aliases[key]
        if key in values:
            if not _expected_matches(wanted, values[key], gold_cwd, cwd, workspace):
                problems.append(f"{name}: expected {wanted!r}, got {values[key]!r}")
        elif not any(_expected_matches(wanted, word, gold_cwd, cwd, workspace) for word in positional):
            problems.append(f"{name}: not set (expected {wanted!r})")
    free = {_key(name) for name in sample.free_arguments}
    free |= {aliases[k] for k in list(free) if k in aliases}
    for key, value in values.items():
        if key in free:
            continue
        wanted = gold_values.get(key, MISSING)
        if wanted is not MISSING and same_parsed(value, wanted, cwd, gold_cwd, workspace):
            continue
        default = defaults.get(key, MISSING)
        if default is not MISSING and same_parsed(value, default, cwd, cwd, workspace):
            continue
        if wanted is MISSING and default is MISSING:
            problems.append(
                f"{key}: {value!r} is an option the gold does not set (it may change what the program does)"
            )
        elif not any(p.startswith(f"{k}:") for k in (key,) for p in problems):
            shown = "unset" if wanted is MISSING else repr(wanted)
            problems.append(f"{key}: {value!r} differs from the gold's {shown} and from the default {default!r}")
    return list(dict.fromkeys(problems))


def _stat(path: Path) -> tuple[int, int, str] | None:
    """An expected output's state (size, mtime, digest; "dir" for a folder), or None when there
    is none. Read here, on the host, from a folder the answer wrote: a link, FIFO, socket or
    device is no output (None), never followed or opened (a FIFO would block the judge for good,
    a socket made the judge raise and the attempt was played again)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return (0, st.st_mtime_ns, "dir")
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    digest = hashlib.sha256()
    with os.fdopen(descriptor, "rb") as handle:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode):  # swapped since the lstat
            return None
        try:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        except OSError:
            return None
    return (opened.st_size, opened.st_mtime_ns, digest.hexdigest())


#: The judge's own files in the sample's folder: never the answer's tampering.
JUDGE_FILES = (".researchgym-answer.py", ".researchgym-answer.sh", ".researchgym-setup.sh")


@dataclass
class _Run:
    """What the hook reported during one run in the sandbox, from the processes allowed to
    report (evidence.py), and the repository's code as it was before the answer ran."""

    evidence: Evidence
    snapshot: dict[str, str]
    workspace: str
    hook_site: str
    exempt: set[str]  # the judge's own files, relative to the workspace

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.evidence.records

    @property
    def outputs(self) -> dict[int, str]:
        return self.evidence.outputs

    @property
    def parses(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") == "parse"]

    def exits(self, pids: set[int]) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") == "exit" and r.get("pid") in pids]

    def runs(self, pid: int, invocation: tuple[str, str, str]) -> bool:
        return self.evidence.runs(pid, invocation)

    def impostor_note(self, claims: list[dict[str, Any]]) -> str:
        """A note on records that name the target from a process not started to run it."""
        starts = []
        for record in claims:
            image = self.evidence.images.get(record["pid"])
            if image is not None:
                starts.append(shlex.join(image.argv)[:80])
        if not starts:
            return ""
        shown = "; ".join(f"`{s}`" for s in dict.fromkeys(starts))
        return f" (records claiming it came from a process started as {shown}, which does not run it)"

    def untampered(self, execution: Check, pids: set[int]) -> Check:
        """`execution`, or a failure if the processes judged ran code the answer changed,
        wrote or swapped (their hook's code reports against the snapshot)."""
        problems = tampering(
            self.evidence.code(pids), self.snapshot, self.workspace, code_roots(self.hook_site), self.exempt
        )
        if not problems:
            return execution
        return Check(False, "the program ran code the answer changed or wrote: " + "; ".join(problems[:5]))


def gold_program(sample: Sample) -> str | None:
    """The program the gold runs, named as the hook names a process's __main__ (a module's
    dotted name as a path, or a script's path relative to the workspace, without `.py`)."""
    found = find_invocation(sample.output)
    if found is None or found[0] == "console":
        return None
    mode, target, _, cd = found
    if mode == "module":
        return target.replace(".", "/")
    path = posixpath.normpath(posixpath.join(sample.path, cd, target))
    return path[:-3] if path.endswith(".py") else path


# ------------------------------------------------------- Python tasks (pyanswer's log)
def mask(printed: str, literals: list[str]) -> str:
    """The output with one occurrence of each text the answer printed from constants blanked
    out, so that an expected pattern can only match what was computed."""
    for text in literals:
        at = printed.find(text) if text else -1
        if at >= 0:
            printed = printed[:at] + "\x00" * len(text) + printed[at + len(text) :]
    return printed


def target_packages(sample: Sample) -> set[str]:
    """The top-level packages a Python task is about: those the gold imports, less the standard
    library and general helpers (numpy, joblib, ...) unless nothing else is left."""
    try:
        tree = ast.parse(sample.output)
    except SyntaxError:
        return set()
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    imported -= set(sys.stdlib_module_names)
    return (imported - GENERAL_LIBRARIES) or imported


def _root(callee: str) -> str:
    return callee.split(":", 1)[0].split(".", 1)[0]


def python_arguments(sample: Sample, calls: list[dict[str, Any]], packages: set[str]) -> Check:
    """Every expected argument must have reached a library call that ran: passed to a parameter
    of that name (as the callee's signature names it, so positional values count), or left at
    that parameter's default where the default is the expected value. Values the library got
    under no name are compared only where no call has a parameter of that name."""
    if packages:
        library = [c for c in calls if _root(c.get("callee", "")) in packages]
    else:
        library = [
            c for c in calls if _root(c.get("callee", "")) not in {"__main__", "builtins", *sys.stdlib_module_names}
        ]
    if not library:
        wanted = ", ".join(sorted(packages)) or "the task's library"
        return Check(False, f"the answer's code never called {wanted} (no call into it ran)")
    problems = []
    for name, wanted in sample.arguments.items():
        key = _key(name)
        given: list[Any] = []
        left: list[Any] = []  # defaults of that parameter in calls that did not set it
        matched = False
        for call in library:
            args = {_key(k): v for k, v in (call.get("args") or {}).items()}
            defaults = {_key(k): v for k, v in (call.get("defaults") or {}).items()}
            if key in args:
                given.append(args[key])
                matched = same_value(wanted, args[key])
            elif key in defaults:
                left.append(defaults[key])
                matched = same_value(wanted, defaults[key])
            if matched:
                break
        if not matched and not given:
            matched = any(
                v is not None and same_value(wanted, v) for call in library for v in call.get("positional") or []
            )
        if not matched:
            problems.append(
                f"{name}: expected {wanted!r}, "
                + (
                    f"the library calls that ran got {', '.join(dict.fromkeys(map(repr, given)))}"
                    if given
                    else f"the library calls that ran left it at its default {left[0]!r}"
                    if left
                    else "no library call that ran received it"
                )
            )
    used = sorted({c["callee"] for c in library})
    return Check(
        not problems,
        "; ".join(problems)
        or f"all {len(sample.arguments)} arguments reached the library calls that ran "
        f"({len(used)} callables of {', '.join(sorted({_root(u) for u in used}))})",
    )


# ------------------------------------------------------------------ the judge
MODES = ("strict", "original")


class Judge:
    """Judges answers to samples of one repository tree (copied afresh for every answer).

    `mode="strict"` (the default) judges what ran; `mode="original"` applies ML-Bench's published
    rules (utils/exec.py of gersteinlab/ML-Bench): every expected value must appear in the answer
    as a case-insensitive substring, a bash answer must contain `.sh ` or `.py ` (a Python answer
    neither), and the answer passes execution on exit status 0 or on a timeout; outputs are not
    looked at. Use it only to compare with the paper's numbers."""

    def __init__(self, repo_dir: Path, *, sandbox: str = "bwrap", memory_mb: int = 4096, mode: str = "strict") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown judge mode {mode!r}; choose one of {', '.join(MODES)}")
        self.repo_dir = Path(repo_dir)
        self.sandbox = sandbox
        self.memory_mb = memory_mb
        self.mode = mode
        self._gold: dict[tuple[str, str], dict[str, Any] | None] = {}
        #: per sample: its setup's capture, or None once seen to need a rerun for every answer
        self._setups: dict[tuple[str, str], SetupCapture | None] = {}

    def judge(self, sample: Sample, language: str, code: str) -> Judgment:
        """The answer's judgment. A fault of the judge's own while judging it (the answer left
        something the judge did not expect) is a failed judgment that names it, never an
        exception: raised, the attempt went unrecorded and a resume asked the model again, so an
        answer that made it raise when it was losing had another try. The sandbox failing, or the
        sample's repository missing, still raise: nothing the answer did is judged then."""
        try:
            return self._judge(sample, language, code)
        except (SandboxError, MLBenchError):
            raise
        except Exception as exc:
            failed = Check(False, f"judge error: {type(exc).__name__}: {exc} (the answer is judged as failed)")
            return Judgment(sample.key, failed, failed, failed, mode=self.mode)

    def _judge(self, sample: Sample, language: str, code: str) -> Judgment:
        with tempfile.TemporaryDirectory(prefix="mlbench-judge-") as tmp:
            workspace = Path(tmp) / "repo"
            shutil.copytree(self.repo_dir, workspace, symlinks=True)
            hook = Path(tmp) / "hook"
            (hook / "site").mkdir(parents=True)
            shutil.copyfile(RUNHOOK, hook / "site" / "sitecustomize.py")
            shutil.copyfile(PYANSWER, hook / "site" / "researchgym_pyanswer.py")
            if self.mode == "original":  # ML-Bench's rules look at nothing the hook would see
                box = self._sandbox(workspace, sample, None)
                try:
                    return self._judge_original(box, workspace, sample, language, code)
                finally:
                    box.close()
            watch = Watch(hook, hook / "site")
            try:
                box = self._sandbox(workspace, sample, watch)
                try:
                    return self._judge_strict(box, workspace, watch, sample, language, code)
                finally:
                    box.close()
            finally:
                watch.close()

    # ------------------------------------------------------------- strict
    def _judge_strict(self, box, workspace: Path, watch: Watch, sample: Sample, language: str, code: str) -> Judgment:
        kind = type_check(sample, language, code)
        folder = workspace / sample.path
        if not folder.is_dir():
            missing = Check(False, f"the task's folder {sample.path} does not exist in the repository")
            return Judgment(sample.key, missing, kind, missing, mode=self.mode)
        self._setup(box, sample, folder)
        # the gold's parse comes before the answer runs, so nothing the answer does to the
        # repository (deleting or editing the script) can take the gold away
        gold = self._gold_parse(box, watch, sample) if sample.is_bash else None
        before = {name: _stat(folder / name) for name in sample.expected_outputs}
        token = secrets.token_hex(16)
        inside_folder = posixpath.normpath(posixpath.join(box.workspace_path, sample.path))
        (watch.channel / f"{token}.outputs").write_text(
            json.dumps([posixpath.normpath(posixpath.join(inside_folder, name)) for name in sample.expected_outputs])
        )
        result, snapshot = self._run_answer(box, watch, sample, code, token)
        exempt = {posixpath.normpath(posixpath.join(sample.path, name)) for name in JUDGE_FILES}
        ran = _Run(watch.evidence(token, "run"), snapshot, box.workspace_path, watch.hook_site, exempt)
        if not sample.is_bash:
            return self._judge_python(box, sample, folder, before, result, ran, kind)
        if gold is None:  # no parser to watch (or a Python task)
            return self._judge_without_parser(box, sample, folder, before, result, ran, kind, code)
        invocation = self._invocation(box, sample)
        claims = [r for r in ran.parses if r.get("program") == gold["program"]]
        targets = [r for r in claims if invocation is not None and ran.runs(r["pid"], invocation)]
        impostors = [r for r in claims if r not in targets]
        arguments, parsed = self._verdict_arguments(
            sample, code, ran, targets, gold, box.workspace_path, ran.impostor_note(impostors)
        )
        pids = {r["pid"] for r in targets}
        printed = "".join(ran.outputs.get(pid, "") for pid in sorted(pids))
        execution = self._outcome(
            sample,
            folder,
            before,
            result,
            printed,
            ran.exits(pids) if pids else [],
            box.workspace_path,
            ran_target=bool(targets),
            statuses={pid: ran.evidence.exit_statuses.get(pid) for pid in pids},
        )
        execution = ran.untampered(execution, pids)
        return Judgment(sample.key, arguments, kind, execution, parsed, gold.get("parser", "argparse"), mode=self.mode)

    def _judge_python(
        self, box, sample: Sample, folder: Path, before: dict[str, Any], result, ran: _Run, kind: Check
    ) -> Judgment:
        """A Python task: the calls the answer's code made (pyanswer's log) decide the arguments;
        the output counts only as far as it was not printed from the answer's constants."""
        # only the answer's own process reports its calls (not a `python -m code` of the answer's)
        own = [r for r in ran.records if ran.runs(r["pid"], ("module", PYANSWER_MODULE, ""))]
        calls = [r for r in own if r.get("kind") == "call"]
        literals = [r.get("text", "") for r in own if r.get("kind") == "literal"]
        arguments = python_arguments(sample, calls, target_packages(sample))
        answer = [
            r for r in own if r.get("kind") == "exit" and str(r.get("program", "")).endswith(".researchgym-answer")
        ]
        printed = ran.outputs.get(answer[-1]["pid"], result.output) if answer else result.output
        execution = self._outcome(sample, folder, before, result, printed, None, box.workspace_path, literals=literals)
        execution = ran.untampered(execution, {r["pid"] for r in own})
        parsed = {"_calls": list(dict.fromkeys(c.get("callee", "?") for c in calls))[:50]}
        return Judgment(sample.key, arguments, kind, execution, parsed, "calls", mode=self.mode)

    def _judge_without_parser(
        self, box, sample: Sample, folder: Path, before: dict[str, Any], result, ran: _Run, kind: Check, code: str
    ) -> Judgment:
        """A gold program that reads sys.argv itself: the hook still sees which program ran (its
        process's __main__ at exit), with which argv, in which folder. Without even that (a
        console program, a Python task), the written command decides, parsed by argshim after
        the execution (it may run the program in full)."""
        program = gold_program(sample) if sample.is_bash else None
        if program is None:
            execution = self._outcome(sample, folder, before, result, result.output, None, box.workspace_path)
            arguments, parsed, parser = self._arguments(box, sample, code)
            return Judgment(sample.key, arguments, kind, execution, parsed, parser, mode=self.mode)
        invocation = self._invocation(box, sample)
        mains = [
            r
            for r in ran.records
            if r.get("kind") == "exit"
            and r.get("program") == program
            and invocation is not None
            and ran.runs(r["pid"], invocation)
        ]
        pids = {r["pid"] for r in mains}
        printed = "".join(ran.outputs.get(pid, "") for pid in sorted(pids))
        execution = self._outcome(
            sample,
            folder,
            before,
            result,
            printed,
            mains,
            box.workspace_path,
            ran_target=bool(mains),
            statuses={pid: ran.evidence.exit_statuses.get(pid) for pid in pids},
        )
        execution = ran.untampered(execution, pids)
        if not mains:
            others = sorted({r.get("program", "?") for r in ran.records if r.get("kind") == "exit"})
            arguments = Check(
                False,
                f"the target program ({program}) never ran"
                + (f"; what ran instead: {', '.join(others)}" if others else "")
                + ran.evidence.refused_note(),
            )
            return Judgment(sample.key, arguments, kind, execution, {}, "sys.argv", mode=self.mode)
        reference = find_invocation(sample.output)
        if reference is None:
            raise MLBenchError(f"sample {sample.key}: its reference answer has no command that runs a program")
        _, _, gold_argv, cd = reference
        gold = {"unknown": gold_argv, "cwd": posixpath.normpath(posixpath.join("/@ws", sample.path, cd))}
        problems: list[str] = []
        for record in mains:
            problems.extend(
                p
                for p in compare_runs(
                    sample,
                    {"unknown": record.get("argv") or [], "cwd": record.get("cwd", "")},
                    gold,
                    box.workspace_path,
                )
                if p not in problems
            )
        arguments = Check(
            not problems,
            "; ".join(problems) or f"all {len(sample.arguments)} arguments match (read from the program's argv)",
        )
        parsed = {"_argv": mains[-1].get("argv") or []}
        return Judgment(sample.key, arguments, kind, execution, parsed, "sys.argv", mode=self.mode)

    def _verdict_arguments(
        self,
        sample: Sample,
        code: str,
        ran: _Run,
        targets: list[dict[str, Any]],
        gold: dict[str, Any],
        workspace: str,
        impostors: str = "",
    ) -> tuple[Check, dict[str, Any]]:
        if not targets:
            detail = f"the target program ({gold['program']}) never ran{impostors}"
            others = sorted({r.get("program", "?") for r in ran.parses} - {gold["program"]})
            if others:
                detail += f"; what ran instead: {', '.join(others)}"
            detail += ran.evidence.refused_note()
            written = find_invocation(code)
            if written and not others:
                detail += (
                    f"; the answer writes `{written[1]}` but it did not run (in a heredoc, a branch "
                    "never taken, behind a function shadowing python?)"
                )
            elif not written:
                detail += "; no command that runs a program was found in the answer"
            return Check(False, detail), {}
        problems: list[str] = []
        for record in targets:
            if "error" in record:
                problems.append(record["error"])
            else:
                problems.extend(p for p in compare_runs(sample, record, gold, workspace) if p not in problems)
        parsed = dict(targets[-1].get("namespace") or {})
        if targets[-1].get("unknown"):
            parsed["_unknown"] = targets[-1]["unknown"]
        runs = f" (the program ran {len(targets)} times)" if len(targets) > 1 else ""
        return Check(
            not problems,
            "; ".join(problems) + runs
            if problems
            else f"all {len(sample.arguments)} arguments match and no other option changes{runs}",
        ), parsed

    def _outcome(
        self,
        sample: Sample,
        folder: Path,
        before: dict[str, Any],
        result,
        printed: str,
        exits: list[dict[str, Any]] | None,
        workspace: str,
        ran_target: bool = True,
        literals: list[str] | None = None,
        statuses: dict[int, int | None] | None = None,
    ) -> Check:
        """Whether the run succeeded: the answer exited 0 in time; with the watch (`exits` not
        None), each target process finished by itself with status 0 (`statuses`, from strace on
        the host), and each expected output holds what a target left at its exit and changed
        while that target ran; and the expected printed output matches."""
        if result.timed_out:
            return Check(False, f"timed out after {sample.timeout_s:g} s (a timeout is not a pass)")
        if result.exit_code != 0:
            return Check(False, f"exit status {result.exit_code}: {result.output.strip()[-400:]}")
        unfinished = {pid: status for pid, status in (statuses or {}).items() if status != 0}
        if ran_target and unfinished:
            how = "; ".join(
                f"pid {pid}: " + ("killed by a signal, or still running" if status is None else f"exit status {status}")
                for pid, status in sorted(unfinished.items())
            )
            return Check(
                False,
                f"the program did not finish by itself with exit status 0 ({how}): what it left cannot be "
                "told from what the answer wrote (an answer that killed it or let it fail, then wrote the "
                "outputs itself, passed before)",
            )
        missing, stale, forged = [], [], []
        inside_folder = posixpath.normpath(posixpath.join(workspace, sample.path))
        for name in sample.expected_outputs:
            now = _stat(folder / name)
            if now is None:
                missing.append(name)
            elif now == before.get(name):
                stale.append(name)
            elif exits is not None:
                inside = posixpath.normpath(posixpath.join(inside_folder, name))
                # What a target left at its exit, where that differs from what was there when it started.
                seen = [
                    tuple(e["files"][inside])
                    for e in exits
                    if (e.get("files") or {}).get(inside)
                    and tuple(e["files"][inside]) != tuple((e.get("files_at_start") or {}).get(inside) or ())
                ]
                if not ran_target or not any(s != before.get(name) and s[2] == now[2] for s in seen):
                    forged.append(name)
        if missing:
            return Check(False, f"exit status 0 but the expected output(s) {missing} were not created")
        if stale:
            return Check(
                False, f"exit status 0 but the expected output(s) {stale} are as they were before the answer ran"
            )
        if forged:
            return Check(
                False,
                f"exit status 0 but the expected output(s) {forged} were not written by the "
                "program (they do not hold what it left at its exit)",
            )
        if sample.expected_stdout:
            if exits is not None and not ran_target:
                return Check(
                    False, f"the program never ran, so nothing it printed can match {sample.expected_stdout!r}"
                )
            printed = ANSI.sub("", printed)
            if not re.search(sample.expected_stdout, printed, re.MULTILINE):
                whose = "the program's output" if exits is not None else "the output"
                return Check(False, f"exit status 0 but {whose} does not match {sample.expected_stdout!r}")
            if literals and not re.search(sample.expected_stdout, mask(printed, literals), re.MULTILINE):
                return Check(
                    False,
                    "the expected output is printed from constants written in the answer, not "
                    f"computed: {', '.join(repr(t) for t in literals[:3])}",
                )
        return Check(
            True, "exit status 0" + (f", created {sample.expected_outputs}" if sample.expected_outputs else "")
        )

    def _gold_parse(self, box, watch: Watch, sample: Sample) -> dict[str, Any] | None:
        """The gold's own program, parsed by its own parser through the same hook (stopped at the
        parse, or after STOP_AFTER_S where it has no parser), once per sample: the record to
        compare with, or None (no parser: the written command decides)."""
        cache = (sample.key, sample.output)  # the record is kept with the workspace written @ws
        if cache in self._gold:
            return self._gold[cache]
        found = find_invocation(sample.output)
        record = None
        if found is not None:
            mode, target, argv, cd = found
            program = {
                "script": f"python {shlex.quote(target)}",
                "module": f"python -m {shlex.quote(target)}",
                "console": shlex.quote(target),
            }[mode]
            token = secrets.token_hex(16)
            command = (
                f"cd {self._folder(box, sample, cd)} && {self._hook_env(box, watch, token, 'stop')} "
                f"{program} " + " ".join(shlex.quote(a) for a in argv) + " </dev/null >/dev/null 2>&1"
            )
            box.run(command, timeout_s=120)
            parses = [r for r in watch.evidence(token, "stop").records if r.get("kind") == "parse"]
            if parses and "error" not in parses[0]:
                record = parses[0]
                record["cwd"] = _inside(record.get("cwd", ""), box.workspace_path)
                record["namespace"] = {
                    k: self._portable(v, box.workspace_path) for k, v in (record.get("namespace") or {}).items()
                }
        self._gold[cache] = record
        return record

    @staticmethod
    def _portable(value: Any, workspace: str) -> Any:
        if isinstance(value, str):
            return _inside(value, workspace)
        if isinstance(value, list):
            return [Judge._portable(v, workspace) for v in value]
        return value

    @staticmethod
    def _hook_env(box, watch: Watch, token: str, mode: str) -> str:
        return (
            f"{HOOK_ENV}={shlex.quote(watch.hook_value(token, mode))} "
            f"RG_MLB_WORKSPACE={shlex.quote(box.workspace_path)} PYTHONNOUSERSITE=1 "
            f"PYTHONPATH={shlex.quote(watch.hook_site)}${{PYTHONPATH:+:$PYTHONPATH}}"
        )

    def _run_answer(self, box, watch: Watch | None, sample: Sample, code: str, token: str | None):
        """Runs the answer; returns its result and, when watched, the repository's code as it
        was just before (code_snapshot)."""
        env = self._hook_env(box, watch, token, "run") + " " if watch is not None and token else ""
        if sample.is_bash:
            self._write(box, sample, ".researchgym-answer.sh", code + "\n")
            command = f"cd {self._folder(box, sample)} && {env}bash .researchgym-answer.sh"
        else:
            prefix = sample.prefix_code.strip()
            self._write(box, sample, ".researchgym-answer.py", (prefix + "\n" if prefix else "") + code.strip() + "\n")
            first_line = prefix.count("\n") + 2 if prefix else 1  # the answer's first line, after the prefix
            packages = shlex.quote(",".join(sorted(target_packages(sample))))
            runner = (
                f"-m {PYANSWER_MODULE} .researchgym-answer.py {first_line} {packages}"
                if env
                else ".researchgym-answer.py"
            )
            command = f"cd {self._folder(box, sample)} && {env}python {runner}"
        snapshot = code_snapshot(self._workspace_of(box)) if env else {}
        return box.run(command, timeout_s=sample.timeout_s), snapshot

    # ----------------------------------------------------------- original
    def _judge_original(self, box, workspace: Path, sample: Sample, language: str, code: str) -> Judgment:
        lowered = code.lower()
        absent = [f"{k}={v!r}" for k, v in sample.arguments.items() if str(v).lower() not in lowered]
        arguments = Check(
            not absent,
            f"not found as text in the answer: {', '.join(absent)}"
            if absent
            else f"all {len(sample.arguments)} values appear in the answer (ML-Bench's substring rule)",
        )
        script_like = ".sh " in code or ".py " in code
        kind = Check(
            script_like if sample.is_bash else not script_like,
            ("contains '.sh ' or '.py '" if script_like else "contains neither '.sh ' nor '.py '")
            + " (ML-Bench's type rule)",
        )
        folder = workspace / sample.path
        if not folder.is_dir():
            return Judgment(sample.key, arguments, kind, Check(False, f"no folder {sample.path}"), mode=self.mode)
        self._setup(box, sample, folder)
        result, _ = self._run_answer(box, None, sample, code, None)
        if result.timed_out:
            execution = Check(True, f"timed out after {sample.timeout_s:g} s (counted as a pass, as ML-Bench does)")
        elif result.exit_code == 0:
            execution = Check(True, "exit status 0 (outputs are not checked, as in ML-Bench)")
        else:
            execution = Check(False, f"exit status {result.exit_code}: {result.output.strip()[-400:]}")
        return Judgment(sample.key, arguments, kind, execution, mode=self.mode)

    # -------------------------------------------------------------- internals
    def _sandbox(self, workspace: Path, sample: Sample, watch: Watch | None):
        limits = Limits(
            command_timeout_s=sample.timeout_s, memory_mb=self.memory_mb, max_processes=512, max_output_chars=20_000
        )
        # the hook's folders keep their host path inside the sandbox (bwrap binds them there; the
        # local sandbox sees the host): its code read-only, its log writable
        mounts = []
        if watch is not None:  # the hook's code and the judge's socket, both read-only
            mounts = [Mount(Path(watch.hook_site), watch.hook_site), Mount(watch.channel, str(watch.channel))]
        spec = SandboxSpec(
            workspace=workspace,
            limits=limits,
            mounts=mounts,
            hidden=list(ANSWER_KEYS),
            env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"},
            exec_trace=watch.trace_log if watch is not None else None,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            box = create_sandbox(self.sandbox, spec)
            box.start()
        return box

    @classmethod
    def _invocation(cls, box, sample: Sample) -> tuple[str, str, str] | None:
        """(mode, target, the program's file inside the sandbox with links resolved as the hook
        resolves them, or "" for a module not in the repository) of the gold's command
        (runs_invocation)."""
        found = find_invocation(sample.output)
        if found is None:
            return None
        mode, target, _, cd = found
        host_root = cls._workspace_of(box).resolve()
        folder = host_root / sample.path / cd
        if mode == "script":
            candidates = [folder / target]
        elif mode == "module":  # python -m finds a module of the repository in its folder first
            path = target.replace(".", "/")
            candidates = [folder / f"{path}.py", folder / path / "__main__.py"]
        else:
            candidates = []
        for candidate in candidates:
            real = candidate.resolve()
            if real.is_file() and real.is_relative_to(host_root):
                inside = posixpath.join(box.workspace_path, real.relative_to(host_root).as_posix())
                return mode, target, posixpath.normpath(inside)
        if mode == "script":  # not in the repository: no process can have run it from there
            return mode, target, posixpath.normpath(posixpath.join(box.workspace_path, sample.path, cd, target))
        return mode, target, ""

    @staticmethod
    def _folder(box, sample: Sample, cd: str = "") -> str:
        """The sample's folder as commands inside `box` see it (the sandbox says where its workspace is)."""
        return shlex.quote(os.path.normpath(os.path.join(box.workspace_path, sample.path, cd)))

    def _write(self, box, sample: Sample, name: str, text: str) -> None:
        self._workspace_of(box).joinpath(sample.path, name).write_text(text)

    @staticmethod
    def _workspace_of(box) -> Path:
        return Path(box.spec.workspace)

    def _setup(self, box, sample: Sample, folder: Path) -> None:
        """Runs the sample's setup, or lays down what it left the first time (setupcache)."""
        if not sample.setup.strip():
            return
        root = self._workspace_of(box)
        key = (sample.key, sample.setup)
        cacheable = key not in self._setups
        captured = self._setups.get(key)
        if captured is not None:
            captured.apply(root)
            return
        before = tree_state(root) if cacheable else {}
        outside = self._outside_workspace(box) if cacheable else None
        (folder / ".researchgym-setup.sh").write_text(sample.setup)
        setup = box.run(f"cd {self._folder(box, sample)} && bash .researchgym-setup.sh", timeout_s=SETUP_TIMEOUT_S)
        if setup.timed_out or setup.exit_code != 0:
            missing = re.search(r"No module named '([\w.]+)'", setup.output)
            hint = ""
            if missing and missing.group(1).split(".")[0] in MLBENCH_EXTRA_MODULES:
                hint = f"; the suite's programs come with the mlbench extra: {install_hint('mlbench')}"
            raise MLBenchError(
                f"the setup of sample {sample.key} failed (not the answer's fault): {setup.output[-500:]}{hint}"
            )
        if cacheable:  # kept only where nothing lies outside the workspace, which a replay could not restore
            unchanged = outside is not None and self._outside_workspace(box) == outside
            self._setups[key] = SetupCapture.between(root, before, tree_state(root)) if unchanged else None

    @staticmethod
    def _outside_workspace(box) -> str | None:
        """What the sandbox holds in HOME and /tmp outside the workspace (None: could not tell)."""
        listing = box.run(
            f"find ~ /tmp -mindepth 1 -path {shlex.quote(box.workspace_path)} -prune -o -printf '%p %s %T@\\n' "
            "2>/dev/null | sort",
            timeout_s=60,
        )
        return listing.output if listing.exit_code == 0 and not listing.timed_out else None

    def _arguments(self, box, sample: Sample, code: str) -> tuple[Check, dict[str, Any], str]:
        """The written command parsed by the program's parser (argshim): the verdict only where
        the hook cannot watch (a program without a parser, a Python task)."""
        found = find_invocation(code)
        if found is None:
            return Check(False, "no command that runs a program was found in the answer"), {}, ""
        mode, target, argv, cd = found
        command = (
            f"cd {self._folder(box, sample, cd)} && python -c {shlex.quote(ARGSHIM.read_text())} "
            f"{mode} {shlex.quote(target)} " + " ".join(shlex.quote(a) for a in argv)
        )
        result = box.run(command, timeout_s=60)
        line = next((ln for ln in reversed(result.output.splitlines()) if ln.startswith("@@argshim ")), None)
        payload: dict[str, Any] = json.loads(line[len("@@argshim ") :]) if line else {"no_parser": True}
        parser = payload.get("parser", "argparse")
        if "error" in payload:
            return Check(False, payload["error"]), {}, parser
        if "namespace" in payload:
            extra, extra_positional = shell_words(payload.get("unknown") or [])
            parsed = {**extra, **payload["namespace"]}
            check = compare_arguments(sample.arguments, parsed, extra_positional, payload.get("options"))
            return check, parsed, parser
        options, positional = shell_words(argv)
        check = compare_arguments(sample.arguments, options, positional)
        return check, {**options, "_positional": positional}, "shell words"
