"""The agent-computer interface: a file viewer, an editor that lints, and search.

Runs *inside* the sandbox, one process per command, with only the standard library (and
pyflakes when it is installed). State that must outlive a command (the open file and the
window's position) lives in `$RESEARCHGYM_STATE_DIR/state.json`, which the environment also
reads to show the step footer. Every command prints what the agent should see and exits
non-zero on a refusal, so scripts can tell.
"""

from __future__ import annotations

import json
import os
import stat
import sys

DEFAULT_WINDOW = 100
MAX_MATCHES = 100
SCROLL_TIP_AFTER = 3
_BINARY_SNIFF = 8192


class Refusal(Exception):
    """A command that cannot do what was asked; the message says why and what to do."""


# ----------------------------------------------------------------------------- state
def _state_path() -> str:
    folder = os.environ.get("RESEARCHGYM_STATE_DIR") or os.path.join(os.path.expanduser("~"), ".researchgym")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, "state.json")


def load_state() -> dict:
    try:
        with open(_state_path(), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def save_state(state: dict) -> None:
    path = _state_path()
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    os.replace(tmp, path)  # atomic: the environment never reads half a file


def window_size() -> int:
    try:
        return max(int(os.environ.get("RESEARCHGYM_WINDOW", DEFAULT_WINDOW)), 3)
    except ValueError:
        return DEFAULT_WINDOW


# ----------------------------------------------------------------------------- files
class TextFile:
    """A text file as lines without their endings, remembering how to write it back.
    (A plain class: importing dataclasses would add ~7 ms to every command.)"""

    def __init__(
        self, path: str, lines: list[str] | None = None, newline: str = "\n", final_newline: bool = True
    ) -> None:
        self.path, self.lines = path, lines if lines is not None else []
        self.newline, self.final_newline = newline, final_newline

    @classmethod
    def read(cls, path: str) -> TextFile:
        check_text_file(path)
        with open(path, "rb") as handle:
            data = handle.read()
        text = data.decode("utf-8", "surrogateescape")
        newline = "\r\n" if text.count("\r\n") * 2 > text.count("\n") else "\n"
        lines = text.split("\n")
        final_newline = text.endswith("\n")
        if final_newline:
            lines.pop()
        if newline == "\r\n":
            lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        if not text:
            lines, final_newline = [], True
        return cls(path, lines, newline, final_newline)

    def text(self, lines: list[str] | None = None) -> str:
        lines = self.lines if lines is None else lines
        body = self.newline.join(lines)
        return body + self.newline if lines and self.final_newline else body

    def write(self, lines: list[str]) -> None:
        with open(self.path, "wb") as handle:
            handle.write(self.text(lines).encode("utf-8", "surrogateescape"))


def check_text_file(path: str) -> None:
    if not os.path.lexists(path):
        raise Refusal(f"File {path} not found. Use find_file NAME to look for it, or create {path}.")
    if os.path.isdir(path):
        raise Refusal(f"{path} is a directory. Use ls {path} to list it, or find_file NAME {path}.")
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise Refusal(f"{path} is not a regular file.")
    with open(path, "rb") as handle:
        head = handle.read(_BINARY_SNIFF)
    if b"\0" in head:
        raise Refusal(f"{path} is a binary file; open and edit work on text files only.")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the sniff boundary
            raise Refusal(f"{path} is not UTF-8 text; open and edit work on text files only.") from None


def render_window(file: TextFile, top: int, window: int, marker: str | None = None) -> str:
    total = len(file.lines)
    top = clamp_top(top, total, window)
    bottom = min(total, top + window - 1)
    out = [f"[File: {file.path} ({total} lines total)]"]
    if total == 0:
        out.append("(this file is empty)")
        return "\n".join(out)
    if top > 1:
        out.append(f"({top - 1} more lines above)")
    width = len(str(bottom))
    for number in range(top, bottom + 1):
        out.append(f"{number:>{width}}:{file.lines[number - 1]}")
    if bottom < total:
        out.append(f"({total - bottom} more lines below)")
    if marker:
        out.append(marker)
    return "\n".join(out)


def clamp_top(top: int, total: int, window: int) -> int:
    return max(1, min(top, max(1, total - window + 1)))


def _open_file(state: dict) -> TextFile:
    path = state.get("open_file")
    if not path:
        raise Refusal("No file is open. Use open PATH first.")
    return TextFile.read(path)


def _parse_line(text: str, what: str = "line number") -> int:
    try:
        return int(text)
    except ValueError:
        raise Refusal(f"{what} must be a whole number, got {text!r}.") from None


def _show(state: dict, file: TextFile, top: int, note: str | None = None) -> str:
    window = window_size()
    state["open_file"] = os.path.abspath(file.path)
    state["top"] = clamp_top(top, len(file.lines), window)
    save_state(state)
    return render_window(file, state["top"], window, note)


# -------------------------------------------------------------------------- viewing
def cmd_open(args: list[str]) -> str:
    if not args:
        raise Refusal("Usage: open PATH [LINE_NUMBER]")
    path = os.path.abspath(args[0])
    file = TextFile.read(path)
    state = load_state()
    state["scrolls"] = 0
    top, notes = 1, []
    if len(args) >= 2:
        line = _parse_line(args[1])
        last = max(len(file.lines), 1)
        if not 1 <= line <= last:
            clamped = min(max(line, 1), last)
            notes.append(f"(line {line} is outside 1..{last}; showing line {clamped} instead)")
            line = clamped
        top = line - window_size() // 2
    if len(args) > 2:
        notes.append(f"(ignored the extra words after the line number: {' '.join(args[2:])})")
    return _show(state, file, top, "\n".join(notes) or None)


def cmd_goto(args: list[str]) -> str:
    if len(args) != 1:
        raise Refusal("Usage: goto LINE_NUMBER")
    state = load_state()
    file = _open_file(state)
    line = _parse_line(args[0])
    if line > max(len(file.lines), 1):
        raise Refusal(f"line number must be between 1 and {max(len(file.lines), 1)}.")
    state["scrolls"] = 0
    return _show(state, file, max(line, 1) - window_size() // 2)


def _scroll(direction: int) -> str:
    state = load_state()
    file = _open_file(state)
    window = window_size()
    current = clamp_top(int(state.get("top", 1)), len(file.lines), window)
    target = clamp_top(current + direction * (window - 2), len(file.lines), window)
    state["scrolls"] = int(state.get("scrolls", 0)) + 1
    note = None
    if target == current:
        note = "(already at the end of the file)" if direction > 0 else "(already at the start of the file)"
    elif state["scrolls"] >= SCROLL_TIP_AFTER:
        note = "(tip: to find something, search_file TERM is faster than scrolling)"
    return _show(state, file, target, note)


def cmd_scroll_down(args: list[str]) -> str:
    if args:
        raise Refusal("Usage: scroll_down (no arguments)")
    return _scroll(+1)


def cmd_scroll_up(args: list[str]) -> str:
    if args:
        raise Refusal("Usage: scroll_up (no arguments)")
    return _scroll(-1)


def cmd_create(args: list[str]) -> str:
    if len(args) != 1:
        raise Refusal("Usage: create PATH")
    path = os.path.abspath(args[0])
    if os.path.lexists(path):
        # Refused, but (as MLGym does) the existing file is opened: the agent sees what is there,
        # and an edit that follows changes that file.
        try:
            state = load_state()
            state["scrolls"] = 0
            shown = _show(state, TextFile.read(path), 1)
        except Refusal:
            shown = ""
        raise Refusal(
            f"{args[0]} already exists, so nothing was created"
            + (f"; here it is, now open:\n{shown}" if shown else ".")
        )
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise Refusal(f"the folder {parent} does not exist. Create it first with mkdir -p {parent}.")
    try:
        with open(path, "x") as handle:
            handle.write("\n")  # one empty line: `edit 1:1` then fills it in
    except OSError as exc:
        raise Refusal(f"cannot create {args[0]}: {exc.strerror}.") from None
    state = load_state()
    state["scrolls"] = 0
    return _show(state, TextFile.read(path), 1)


# -------------------------------------------------------------------------- editing
def read_block() -> list[str]:
    """The replacement text, from the heredoc the environment builds out of an edit block."""
    mode = os.fstat(0).st_mode
    if os.environ.get("RESEARCHGYM_BLOCK") == "1" and stat.S_ISCHR(mode):
        return []  # an empty block: bash fed the empty heredoc from /dev/null
    if stat.S_ISCHR(mode) or os.isatty(0):
        raise Refusal(
            "this command needs its text on the following lines, ended by a line with only the "
            "terminator, e.g.\n  edit 3:4\n  new line 3\n  end_of_edit"
        )
    data = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


# The rule set MLGym's editor gates edits with (its flake8 --select list): undefined names
# (F821), undefined names in __all__ (F822), duplicate arguments (F831), indentation that is
# not a multiple of four or is unexpected (E111, E112, E113), syntax errors (E999) and files
# that cannot be tokenized (E902). RESEARCHGYM_LINT overrides it: codes separated by commas,
# or "off" for no gate at all.
DEFAULT_LINT = "F821,F822,F831,E111,E112,E113,E999,E902"

# pyflakes message classes by their flake8 code (those worth gating on).
_PYFLAKES_CODES = {
    "F401": "UnusedImport",
    "F402": "ImportShadowedByLoopVar",
    "F403": "ImportStarUsed",
    "F405": "ImportStarUsage",
    "F541": "FStringMissingPlaceholders",
    "F601": "MultiValueRepeatedKeyLiteral",
    "F621": "TooManyExpressionsInStarredAssignment",
    "F622": "TwoStarredExpressions",
    "F631": "AssertTuple",
    "F632": "IsLiteral",
    "F701": "BreakOutsideLoop",
    "F702": "ContinueOutsideLoop",
    "F704": "YieldOutsideFunction",
    "F706": "ReturnOutsideFunction",
    "F707": "DefaultExceptNotLast",
    "F722": "ForwardAnnotationSyntaxError",
    "F811": "RedefinedWhileUnused",
    "F821": "UndefinedName",
    "F822": "UndefinedExport",
    "F823": "UndefinedLocal",
    "F831": "DuplicateArgument",
    "F841": "UnusedVariable",
}


def lint_codes() -> set[str]:
    raw = os.environ.get("RESEARCHGYM_LINT", DEFAULT_LINT).strip()
    if raw.lower() in {"off", "none", "no", "false", "0"}:
        return set()
    return {code.strip().upper() for code in raw.replace(" ", ",").split(",") if code.strip()}


def _indentation_errors(source: str) -> list[tuple[int, int, str]]:
    """E111 as pycodestyle finds it: a logical line indented by a non-multiple of four
    (tabs expanded to eight). Its siblings E112/E113 (a missing or unexpected indented block)
    can only occur in code that does not parse, which flake8 reports as E999 instead."""
    import io
    import tokenize

    found = []
    skip = {
        tokenize.NL,
        tokenize.COMMENT,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.NEWLINE,
        tokenize.ENCODING,
        tokenize.ENDMARKER,
    }
    at_start = True
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NEWLINE:
            at_start = True
        elif at_start and token.type not in skip:
            at_start = False
            if len(token.line[: token.start[1]].expandtabs(8)) % 4:
                found.append((token.start[0], 1, "E111 indentation is not a multiple of 4"))
    return found


def lint(source: str, filename: str, codes: set[str] | None = None) -> list[tuple[int, int, str]]:
    """(line, column, "CODE message") for each problem of the selected kinds, in order.

    As flake8 does, a file that does not parse reports only its syntax error (E999)."""
    codes = lint_codes() if codes is None else codes
    if not codes:
        return []
    try:
        tree = compile(source, filename, "exec", flags=0x400, dont_inherit=True)  # PyCF_ONLY_AST
    except SyntaxError as exc:
        if "E999" not in codes:
            return []
        return [(exc.lineno or 1, exc.offset or 1, f"E999 {type(exc).__name__}: {exc.msg}")]
    except ValueError as exc:  # e.g. NUL bytes
        return [(1, 1, f"E902 {exc}")] if "E902" in codes else []
    found: list[tuple[int, int, str]] = []
    wanted = {kind: code for code, kind in _PYFLAKES_CODES.items() if code in codes}
    if wanted:
        try:
            from pyflakes import checker
        except ImportError:
            pass  # _apply says so aloud: a silent skip would hide undefined names
        else:
            for message in checker.Checker(tree, filename=filename).messages:
                code = wanted.get(type(message).__name__)
                if code:
                    found.append((message.lineno, message.col + 1, f"{code} {message.message % message.message_args}"))
    if "E111" in codes:
        try:
            found.extend(_indentation_errors(source))
        except Exception as exc:  # noqa: BLE001 - tokenize.TokenError, which parsing code rarely raises
            if "E902" in codes:
                found.append((1, 1, f"E902 {type(exc).__name__}: {exc}"))
    return sorted(found)


def _have_pyflakes() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyflakes") is not None


def _new_errors(
    before: list[tuple[int, int, str]], after: list[tuple[int, int, str]], start: int, end: int, added: int
) -> list[tuple[int, int, str]]:
    """Errors of `after` that the edit introduced, by MLGym's rule: an error before the edit
    still counts as old if it lay outside the replaced lines start..end, at its line shifted
    by the `added` lines when it lay below them; errors inside the replaced lines count as new
    if they are still there."""
    old = set()
    for line, column, text in before:
        if line < start:
            old.add((line, column, text))
        elif line > end:
            old.add((line + added, column, text))
    return [error for error in after if error not in old]


def _apply(
    file: TextFile, start: int, end: int, replacement: list[str], verb: str, notes: list[str] | None = None
) -> str:
    """Replace lines start..end (1-based, end = start - 1 inserts) after linting Python."""
    if not os.access(file.path, os.W_OK):
        raise Refusal(f"{file.path} is read-only; edits to it are refused.")
    new_lines = file.lines[: start - 1] + replacement + file.lines[end:]
    if file.path.endswith(".py"):
        added = len(replacement) - (end - start + 1)
        errors = _new_errors(lint(file.text(), file.path), lint(file.text(new_lines), file.path), start, end, added)
        if errors:
            window = window_size()
            shown_top = max(1, start - 3)
            proposed = TextFile(file.path, new_lines, file.newline, file.final_newline)
            listing = "\n".join(f"- line {line}: {text}" for line, _, text in errors)
            raise Refusal(
                f"your {verb} would introduce new errors, so it was NOT applied (the file is unchanged).\n"
                f"Errors:\n{listing}\n"
                "This is how the file would have looked:\n"
                "-------------------------------------------------\n"
                f"{render_window(proposed, shown_top, min(window, len(replacement) + 6))}\n"
                "-------------------------------------------------\n"
                "This is the original:\n"
                "-------------------------------------------------\n"
                f"{render_window(file, shown_top, min(window, end - start + 7))}\n"
                "-------------------------------------------------\n"
                f"Fix your {verb} and try again."
            )
    # Every line ends with a newline afterwards, the last one included (as in MLGym): an edit
    # whose text ends with an empty line keeps it even where the file had no final newline.
    file.final_newline = True
    file.write(new_lines)
    file.lines = new_lines
    state = load_state()
    state["scrolls"] = 0
    note = "\n".join(
        [*(notes or []), "File updated. Check the changed lines (indentation, duplicates) and edit again if needed."]
    )
    if file.path.endswith(".py") and lint_codes() - {"E999", "E902", "E111", "E112", "E113"} and not _have_pyflakes():
        note += "\n(warning: pyflakes is not installed here, so only syntax was checked, not undefined names)"
    return _show(state, file, start - window_size() // 2 + len(replacement) // 2, note)


def _ignored(args: list[str]) -> list[str]:
    return (
        [f"(ignored the extra words {' '.join(args)!r}: edit and insert always change the open file)"] if args else []
    )


def cmd_edit(args: list[str]) -> str:
    usage = "Usage: edit START:END (on the open file), then the new lines, then a line end_of_edit"
    if not args or ":" not in args[0]:
        raise Refusal(usage + (f"; got {' '.join(args)!r}" if args else ""))
    first, last = args[0].split(":")[:2]
    if not (first.isdigit() and last.isdigit()):
        raise Refusal(f"{usage}; START and END must be line numbers, got {args[0]!r}.")
    start, end = int(first), int(last)
    state = load_state()
    file = _open_file(state)
    total = len(file.lines)
    if start < 1 or end < start:
        raise Refusal(f"need 1 <= START <= END (the file has {total} lines), got {start}:{end}.")
    notes = _ignored(args[1:])
    if end > total:
        # Clamped, as MLGym does: the lines from START to the end of the file are replaced
        # (START past the end appends).
        start, end = min(start, total + 1), total
        notes.append(
            f"(the file has {total} lines: replaced lines {start} to {total})"
            if start <= total
            else f"(the file has {total} lines: added the new lines at its end)"
        )
    replacement = read_block()
    return _apply(file, start, end, replacement, "edit", notes)


def cmd_insert(args: list[str]) -> str:
    usage = "Usage: insert LINE, then the new lines, then a line end_of_insert (LINE 0 inserts at the top)"
    if not args or not args[0].isdigit():
        raise Refusal(usage + (f"; LINE must be a line number, got {args[0]!r}." if args else ""))
    line = int(args[0])
    state = load_state()
    file = _open_file(state)
    total = len(file.lines)
    notes = _ignored(args[1:])
    if line > total:
        notes.append(f"(the file has {total} lines: added the new lines at its end)")
        line = total
    replacement = read_block()
    return _apply(file, line + 1, line, replacement, "insert", notes)


# -------------------------------------------------------------------------- search
def _text_files(root: str):
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in {".git", "__pycache__"})
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            if b"\0" in data[:_BINARY_SNIFF]:
                continue
            yield path, data.decode("utf-8", "replace")


def cmd_search_dir(args: list[str]) -> str:
    if not 1 <= len(args) <= 2:
        raise Refusal("Usage: search_dir TERM [DIR]")
    term, root = args[0], args[1] if len(args) == 2 else "."
    if not os.path.isdir(root):
        raise Refusal(f"{root} is not a directory.")
    hits = []
    for path, text in _text_files(root):
        count = text.count(term)
        if count:
            hits.append((os.path.relpath(path) if not os.path.isabs(root) else path, count))
            if len(hits) > MAX_MATCHES:
                raise Refusal(
                    f"more than {MAX_MATCHES} files match {term!r} in {root}. Narrow the search: "
                    "a longer term, or a subdirectory."
                )
    total = sum(count for _, count in hits)
    return _matches(term, root, total, [f"{path} ({count} matches)" for path, count in hits])


def _matches(term: str, where: str, total: int, rows: list[str]) -> str:
    if not rows:
        return f'No matches found for "{term}" in {where}'
    return "\n".join(
        [f'Found {total} matches for "{term}" in {where}:', *rows, f'End of matches for "{term}" in {where}']
    )


def cmd_search_file(args: list[str]) -> str:
    if not 1 <= len(args) <= 2:
        raise Refusal("Usage: search_file TERM [FILE] (FILE defaults to the open file)")
    term = args[0]
    path: str | None
    if len(args) == 2:
        path = args[1]
    else:
        path = load_state().get("open_file")
        if not path:
            raise Refusal("No file is open and no FILE given. Use search_file TERM FILE, or open a file first.")
    file = TextFile.read(path)
    matches = [(n, line) for n, line in enumerate(file.lines, 1) if term in line]
    if len(matches) > MAX_MATCHES:
        raise Refusal(f"more than {MAX_MATCHES} lines match {term!r} in {path}. Narrow the search with a longer term.")
    return _matches(term, path, len(matches), [f"Line {n}:{line}" for n, line in matches])


def cmd_find_file(args: list[str]) -> str:
    if not 1 <= len(args) <= 2:
        raise Refusal("Usage: find_file NAME [DIR] (NAME may use wildcards: *.py, data_??.csv)")
    import fnmatch  # only here: it costs every other command a few ms

    pattern, root = args[0], args[1] if len(args) == 2 else "."
    if not os.path.isdir(root):
        raise Refusal(f"{root} is not a directory.")
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in {".git", "__pycache__"})
        for name in sorted(files):
            if fnmatch.fnmatchcase(name, pattern):
                found.append(os.path.join(folder, name))
                if len(found) > MAX_MATCHES:
                    raise Refusal(f"more than {MAX_MATCHES} files match {pattern!r} in {root}. Narrow the search.")
    if not found:
        return f'No files found matching "{pattern}" in {root}'
    return "\n".join([f'Found {len(found)} files matching "{pattern}" in {root}:', *found])


COMMANDS = {
    "open": cmd_open,
    "goto": cmd_goto,
    "scroll_up": cmd_scroll_up,
    "scroll_down": cmd_scroll_down,
    "create": cmd_create,
    "edit": cmd_edit,
    "insert": cmd_insert,
    "search_dir": cmd_search_dir,
    "search_file": cmd_search_file,
    "find_file": cmd_find_file,
}


def main(name: str) -> None:
    try:
        print(COMMANDS[name](sys.argv[1:]))
    except Refusal as exc:
        print(f"Error: {exc}")
        sys.exit(1)
    except OSError as exc:
        print(f"Error: {name}: {exc.strerror or exc} ({exc.filename or ''})")
        sys.exit(1)
