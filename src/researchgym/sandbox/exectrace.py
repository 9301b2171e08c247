"""Which program image each sandboxed process ran, as seen by `strace` on the host.

A judge must not take a sandboxed process's word for what it is: anything inside can lie about
its own argv, environment or /proc entries. The launcher (bubblewrap) therefore runs under an
`strace` started on the host that writes to a host file, and this module reads that log back into
a per-process history: successful execs, and forks that inherit the parent's image.

Sandboxed code cannot forge a line of the log: every string it controls is printed quoted and
C-escaped, so the parser reads quoted strings as strings and trusts only what lies outside them.
"""

from __future__ import annotations

import bisect
import functools
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from researchgym.errors import SandboxError

_TRACED = "trace=execve,execveat,fork,vfork,clone,clone3"


class ExecTraceError(SandboxError):
    """The exec tracer cannot be set up (strace missing)."""


def strace_path() -> str | None:
    return shutil.which("strace")


def tracer_argv(log: Path) -> list[str]:
    """The prefix to put before the launcher's argv so every exec and fork lands in `log`.

    `--seccomp-bpf` stops only on the traced calls (cheap); `-v -s 65536` prints argv and env in
    full; `--pidns-translation` prints a child's host pid next to the pid a process inside the
    sandbox's pid namespace sees, without which forks there cannot be linked to their children.
    """
    strace = strace_path()
    if strace is None:
        raise ExecTraceError(
            "strace is not installed, so the programs run inside the sandbox cannot be observed "
            "from the host; install strace: apt-get install strace"
        )
    return [
        strace,
        "-f",
        "-q",  # not -qq: each process's exit status is wanted ("+++ exited with N +++")
        "--seccomp-bpf",
        "--pidns-translation",
        "-ttt",
        "-v",
        "-s",
        "65536",
        "-e",
        _TRACED,
        "-e",
        "signal=none",
        "-o",
        str(log),
        "--",
    ]


@dataclass(frozen=True)
class Image:
    """One program image as execve received it; `truncated` says strace printed only part."""

    path: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    truncated: bool

    def getenv(self, name: str) -> str | None:
        """The first value of `name`, as getenv(3) in the program would see it."""
        for key, value in self.env:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class _Event:
    """A change to what a pid runs: an exec (`image`), a fork from `parent` or a thread of it."""

    t: float
    kind: str  # "exec", "fork" or "thread"
    image: Image | None = None
    parent: int = 0


class _Unparsed(Exception):
    """A line this parser does not understand; it is skipped."""


_PREFIX = re.compile(r"(\d+)\s+(\d+(?:\.\d+)?)\s+")
_RESUMED = re.compile(r"<\.\.\. (\w+) resumed>(.*)")
_UNFINISHED = " <unfinished ...>"
_PID_CHANGED = re.compile(r"(.*) <pid changed to (\d+) \.\.\.>")
_STRING = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"(\.\.\.)?')
_ITEM = r'(?:"[^"\\]*(?:\\.[^"\\]*)*"(?:\.\.\.)?|\.\.\.)'
_ARRAY = re.compile(rf"\[(?:{_ITEM}(?:, {_ITEM})*)?\]")  # the usual array, read in one go
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {b"n": 10, b"t": 9, b"r": 13, b"v": 11, b"f": 12, b"a": 7, b"b": 8, b"e": 27}
_RESULT = re.compile(r"\s*=\s*(-?\d+|\?)(?:\s*/\* (\d+) in strace's PID NS \*/)?")
_CLONE = re.compile(r"(clone3?|v?fork)\(")
#: A process's own exit (strace prints no line for one killed by a signal here: no line, no status).
_EXITED = re.compile(r"\+\+\+ exited with (\d+) \+\+\+")
_FLAGS = re.compile(r"flags=([A-Z0-9_|]+)")


def _unescape(body: str) -> bytes:
    """The bytes strace printed C-escaped; decoded only after, since argv need not be UTF-8."""

    def one(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1] == b"x" and len(code) > 1:
            return bytes([int(code[1:], 16)])
        if code[:1] in b"01234567":
            return bytes([int(code, 8) & 0xFF])
        simple = _SIMPLE_ESCAPES.get(code)
        return bytes([simple]) if simple is not None else code

    return _ESCAPE.sub(one, body.encode("utf-8", "surrogateescape"))


@functools.lru_cache(maxsize=256)
def _read_array(text: str) -> tuple[tuple[str, ...], bool]:
    """The strings of a well-formed array; cached, as most execs pass the same environment."""
    scan = _Scanner(text, 0)
    items = tuple(scan._decode(match) for match in _STRING.finditer(text))
    return items, scan.truncated or text.endswith((", ...]", "[...]"))  # more elements than -s


class _Scanner:
    """Reads an execve argument list; strings are taken whole, never searched inside."""

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos
        self.truncated = False

    def expect(self, literal: str) -> None:
        if not self.text.startswith(literal, self.pos):
            raise _Unparsed(literal)
        self.pos += len(literal)

    def string(self) -> str:
        match = _STRING.match(self.text, self.pos)
        if match is None:
            raise _Unparsed("string")
        self.pos = match.end()
        return self._decode(match)

    def _decode(self, match: re.Match[str]) -> str:
        if match.group(2):  # cut by -s
            self.truncated = True
        body = match.group(1)
        return _unescape(body).decode("utf-8", "surrogateescape") if "\\" in body else body

    def token(self) -> str:
        """A bare argument (NULL, an address with a comment, AT_FDCWD), up to `,` or `)`."""
        end = self.pos
        while end < len(self.text) and self.text[end] not in ",)":
            end += 1
        token = self.text[self.pos : end].strip()
        self.pos = end
        return token

    def strings(self) -> list[str]:
        """An array of strings; anything else there (an address, `...`) marks it truncated."""
        if not self.text.startswith("[", self.pos):
            if self.token() != "NULL":  # an address strace did not read: argv/env unknown
                self.truncated = True
            return []
        array = _ARRAY.match(self.text, self.pos)
        if array is not None:
            self.pos = array.end()
            cached, truncated = _read_array(array.group())
            self.truncated |= truncated
            return list(cached)
        self.pos += 1
        items: list[str] = []
        first = True
        while not self.text.startswith("]", self.pos):
            if not first:
                self.expect(", ")
            first = False
            if self.text.startswith('"', self.pos):
                items.append(self.string())
            else:
                self.truncated = True
                end = self.pos
                while end < len(self.text) and self.text[end] not in ",]":
                    end += 1
                if end == self.pos:
                    raise _Unparsed("array")
                self.pos = end
        self.pos += 1
        return items


def _parse_exec(call: str) -> tuple[Image, bool]:
    """(image, succeeded) of a complete execve/execveat line body."""
    at = call.startswith("execveat(")
    scan = _Scanner(call, len("execveat(") if at else len("execve("))
    if at:
        scan.token()  # dirfd
        scan.expect(", ")
    path = scan.string()
    scan.expect(", ")
    argv = scan.strings()
    scan.expect(", ")
    env = scan.strings()
    if at:
        scan.expect(", ")
        scan.token()  # flags
    scan.expect(")")
    result = _RESULT.match(call, scan.pos)
    if result is None:
        raise _Unparsed("result")
    return Image(path, tuple(argv), _pairs(tuple(env)), scan.truncated), result.group(1) == "0"


@functools.lru_cache(maxsize=256)
def _pairs(env: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, _, value in (entry.partition("=") for entry in env))


@dataclass(frozen=True)
class _Clone:
    t: float
    seq: int
    parent: int
    child: int
    thread: bool
    new_pidns: bool
    translated: bool


def _parse_clone(call: str) -> tuple[int, bool, bool, bool] | None:
    """(child, is_thread, new_pidns, translated) of a complete fork-family line, None if none."""
    close = call.rfind(")")  # no strings in these calls, so the last `)` closes the arguments
    result = _RESULT.match(call, close + 1) if close >= 0 else None
    if result is None:
        raise _Unparsed("clone")
    if result.group(1) == "?" or int(result.group(1)) <= 0:
        return None
    flags_match = _FLAGS.search(call, 0, close)
    flags = set(flags_match.group(1).split("|")) if flags_match else set()
    host = result.group(2)
    child = int(host) if host else int(result.group(1))
    return child, "CLONE_THREAD" in flags, "CLONE_NEWPID" in flags, host is not None


class ExecTrace:
    """Per-pid histories from an strace log, asked by wall time because pids are reused."""

    def __init__(
        self, events: dict[int, list[_Event]], exits: dict[int, list[tuple[float, int]]] | None = None
    ) -> None:
        self._events = events
        self._times = {pid: [event.t for event in history] for pid, history in events.items()}
        self._exits = exits or {}

    def exit_status(self, pid: int, since: float) -> int | None:
        """The status pid exited with, its first exit at or after `since` (pids are reused);
        None when it was killed by a signal or had not exited when the log was read."""
        for t, status in self._exits.get(pid, []):
            if t >= since:
                return status
        return None

    @classmethod
    def read(cls, log: Path) -> ExecTrace:
        """The trace in `log`; a log that was never written means nothing ran."""
        try:
            data = log.read_bytes()
        except FileNotFoundError:
            return cls({})
        return cls.parse(data.decode("utf-8", "surrogateescape"))

    @classmethod
    def parse(cls, text: str) -> ExecTrace:
        """Read strace's text; lines it cannot understand are skipped, never fatal."""
        pending: dict[int, tuple[float, str]] = {}
        execs: list[tuple[float, int, int, Image]] = []
        clones: list[_Clone] = []
        root: int | None = None  # the pid strace started: the first one it reports
        exits: dict[int, list[tuple[float, int]]] = {}
        for seq, line in enumerate(text.splitlines()):
            prefix = _PREFIX.match(line)
            if prefix is None:
                continue
            pid, t, body = int(prefix.group(1)), float(prefix.group(2)), line[prefix.end() :].rstrip()
            root = pid if root is None else root
            if body.startswith("+++ "):
                exited = _EXITED.fullmatch(body)
                if exited is not None:
                    exits.setdefault(pid, []).append((t, int(exited.group(1))))
                continue
            resumed = _RESUMED.fullmatch(body) if body.startswith("<... ") else None
            if resumed is not None:
                if pid not in pending:
                    continue
                t, head = pending.pop(pid)
                if not head.startswith(resumed.group(1) + "("):
                    continue
                body = head + resumed.group(2)
            elif body.endswith(_UNFINISHED):
                pending[pid] = (t, body[: -len(_UNFINISHED)])
                continue
            else:
                changed = _PID_CHANGED.fullmatch(body) if body.endswith(" ...>") else None
                if changed is not None:
                    # A non-leader thread exec'd: the kernel gives it the leader's pid, and the
                    # exec succeeded (the pid only changes then). Whatever either had pending died.
                    pid = int(changed.group(2))
                    pending.pop(pid, None)
                    pending.pop(int(prefix.group(1)), None)
                    body = changed.group(1) + ") = 0"
            try:
                if body.startswith(("execve(", "execveat(")):
                    image, ok = _parse_exec(body)
                    if ok:
                        execs.append((t, seq, pid, image))
                elif _CLONE.match(body) is not None:
                    found = _parse_clone(body)
                    if found is not None:
                        clones.append(_Clone(t, seq, pid, *found))
            except (_Unparsed, ValueError):
                continue
        return cls(_histories(root, execs, clones), exits)

    def pids(self) -> set[int]:
        return set(self._events)

    def image_at(self, pid: int, t: float) -> Image | None:
        """What host process `pid` ran at wall time `t` (like time.time()); None if unknown."""
        seen: set[tuple[int, float]] = set()
        while (pid, t) not in seen:
            seen.add((pid, t))
            event = self._latest(pid, t)
            if event is None:
                return None
            if event.kind == "exec":
                return event.image
            if event.kind == "fork":
                pid, t = event.parent, event.t  # a fork copies the parent's image at that moment
            else:
                pid = self._leader(event.parent, event.t)  # a thread runs its process's image
        return None  # a cycle, only possible in a corrupt log

    def _latest(self, pid: int, t: float) -> _Event | None:
        times = self._times.get(pid)
        if not times:
            return None
        index = bisect.bisect_right(times, t)
        return self._events[pid][index - 1] if index else None

    def _leader(self, pid: int, t: float) -> int:
        """The thread-group leader of `pid` at `t`: whose pid outlives every thread."""
        seen: set[int] = set()
        while pid not in seen:
            seen.add(pid)
            event = self._latest(pid, t)
            if event is None or event.kind != "thread":
                return pid
            pid = event.parent
        return pid


def _histories(
    root: int | None, execs: list[tuple[float, int, int, Image]], clones: list[_Clone]
) -> dict[int, list[_Event]]:
    """Time-ordered events per pid; entry times order them, as resumed lines come late."""
    tagged: list[tuple[float, int, int, _Event]] = [
        (t, seq, pid, _Event(t, "exec", image)) for t, seq, pid, image in execs
    ]
    # A process in a nested pid namespace sees its children's pids there; an untranslated result
    # may name some unrelated host process. Once the trace made a pid namespace, such a result is
    # trusted only from a process known to share strace's: the traced command (`root`) and what
    # it forked without CLONE_NEWPID.
    unknown = None if any(clone.new_pidns for clone in clones) else False
    nested: dict[int, bool | None] = {} if root is None else {root: False}
    for clone in sorted(clones, key=lambda c: (c.t, c.seq)):
        inside = nested.get(clone.parent, unknown)
        if inside is not False and not clone.translated:
            continue
        nested[clone.child] = bool(inside or clone.new_pidns or clone.translated)
        kind = "thread" if clone.thread else "fork"
        tagged.append((clone.t, clone.seq, clone.child, _Event(clone.t, kind, parent=clone.parent)))
    events: dict[int, list[_Event]] = {}
    for _, _, pid, event in sorted(tagged, key=lambda item: (item[0], item[1])):
        events.setdefault(pid, []).append(event)
    return events
