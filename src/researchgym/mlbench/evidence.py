"""The strict judge's evidence channel: how the run hook inside the sandbox reports what ran,
in a way the answer's own shell cannot forge.

The hook used to append its records to a log file in a folder the sandbox could write, whose
path was in the environment of the answer's shell: `echo '{"kind": "parse", ...}' >> $log`
forged a run. Now the judge serves a Unix stream socket (its folder bound read-only into the
sandbox) and every Python process the hook runs in connects to it once. The kernel tells the
judge which process connected (`SO_PEERCRED`: its pid as the host sees it, which no sandboxed
process can choose), and the judge notes when; `ExecTrace` (strace on the host) then says which
program image that pid ran at that moment. Records from a connection whose process is not a
genuine run of a program (a `python -c`, a program the answer wrote, a Python whose start-up
the answer changed) are refused, whatever they claim.

Wire format, both ways framed as 4-byte big-endian length + payload: the client's first frame
is `H` + the run token; the judge answers one byte (`\\x01`) once it has taken the peer's
identity, so the process is alive while it is identified (a pid the answer recycles later is a
new process, told apart by time). Then `R` + one JSON record, or `O` + bytes the process wrote
to its stdout or stderr.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from researchgym.mlbench.runhook import ENV as HOOK_ENV
from researchgym.sandbox.exectrace import ExecTrace, Image

SOCKET_NAME = "evidence.sock"
#: What one process may send before the judge stops keeping it (the run goes on).
MAX_RECORDS_PER_PROCESS = 50_000
MAX_RECORD_BYTES = 8 << 20
MAX_OUTPUT_BYTES = 8 << 20
#: What all processes of one server may send together (the judge's memory is not the answer's).
MAX_TOTAL_BYTES = 256 << 20
#: Connections held at once (each by one judge thread); more are closed unanswered.
MAX_CONNECTIONS = 128
HELLO_TIMEOUT_S = 10.0
#: How long `collect` waits for processes that have exited to finish sending.
DRAIN_TIMEOUT_S = 5.0

_HEADER = struct.Struct(">I")


@dataclass
class Connection:
    """One process's evidence: who it is (by the kernel) and what it sent."""

    pid: int  # as the host sees it
    uid: int
    accepted_at: float  # time.time() while the process waited for the answer to its hello
    token: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    output: bytearray = field(default_factory=bytearray)
    dropped: int = 0  # records or output bytes past the limits
    closed: threading.Event = field(default_factory=threading.Event)


class EvidenceServer:
    """Serves the evidence socket in `folder` until `close`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / SOCKET_NAME
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self.path.chmod(0o777)  # the sandbox's user (uid 1000 inside) must be able to connect
        self._listener.listen(64)
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._active = 0
        self._total = 0
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="evidence-accept", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- serving
    def _accept(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            try:
                pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            except OSError:
                sock.close()
                continue
            with self._lock:
                if self._active >= MAX_CONNECTIONS:
                    sock.close()
                    continue
                self._active += 1
            connection = Connection(pid=pid, uid=uid, accepted_at=time.time())
            threading.Thread(target=self._serve, args=(sock, connection), name="evidence-conn", daemon=True).start()

    def _serve(self, sock: socket.socket, connection: Connection) -> None:
        try:
            sock.settimeout(HELLO_TIMEOUT_S)
            hello = _read_frame(sock)
            if not hello or hello[:1] != b"H":
                return
            connection.token = hello[1:].decode("utf-8", "replace")
            connection.accepted_at = time.time()
            with self._lock:
                self._connections.append(connection)
            sock.sendall(b"\x01")
            sock.settimeout(None)
            kept = 0
            while True:
                frame = _read_frame(sock)
                if frame is None:
                    return
                kind, body = frame[:1], frame[1:]
                with self._lock:
                    over = self._total + len(body) > MAX_TOTAL_BYTES
                    if not over:
                        self._total += len(body)
                if over:
                    connection.dropped += 1
                    continue
                if kind == b"R":
                    if len(connection.records) >= MAX_RECORDS_PER_PROCESS or kept + len(body) > MAX_RECORD_BYTES:
                        connection.dropped += 1
                        continue
                    kept += len(body)
                    try:
                        record = json.loads(body)
                    except ValueError:
                        continue
                    if well_formed(record):
                        connection.records.append(record)
                    else:
                        connection.dropped += 1
                elif kind == b"O":
                    room = MAX_OUTPUT_BYTES - len(connection.output)
                    connection.output += body[: max(room, 0)]
                    connection.dropped += max(len(body) - max(room, 0), 0)
        except OSError:
            return
        finally:
            connection.closed.set()
            sock.close()
            with self._lock:
                self._active -= 1

    # --------------------------------------------------------------- reading
    def collect(self, token: str, drain_timeout_s: float = DRAIN_TIMEOUT_S) -> list[Connection]:
        """The connections of one run (its token), in the order they were identified, after
        those whose process has ended have sent everything (a process still running, a daemon
        the answer left behind, is taken as it is after `drain_timeout_s`)."""
        with self._lock:
            found = [c for c in self._connections if c.token == token]
        deadline = time.monotonic() + drain_timeout_s
        for connection in found:
            connection.closed.wait(max(deadline - time.monotonic(), 0.0))
        return found

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        try:
            self.path.unlink()
        except OSError:
            pass


#: The fields the hook's records carry (runhook.py), with the types the judge relies on: any
#: hooked process can send records, and one field of another type (a list as `program`) made
#: the judge raise, which left the attempt unrecorded for a resume to ask again.
RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "program": (str,),
    "argv0": (str,),
    "argv": (list,),
    "cwd": (str,),
    "namespace": (dict,),
    "unknown": (list,),
    "error": (str,),
    "files": (dict,),
    "files_at_start": (dict,),
    "parsed": (bool,),
    "path": (str,),
    "real": (str,),
    "sha": (str,),
    "same": (bool, type(None)),
    "text": (str,),
}


def well_formed(record: Any) -> bool:
    """A record the judge can read: an object whose known fields have their types (argv a list
    of strings, files a mapping of paths to [size, mtime, digest] or null)."""
    if not isinstance(record, dict):
        return False
    for name, types in RECORD_FIELDS.items():
        if name in record and not isinstance(record[name], types):
            return False
    if not all(isinstance(arg, str) for arg in record.get("argv", [])):
        return False
    for state in [*(record.get("files") or {}).values(), *(record.get("files_at_start") or {}).values()]:
        if state is not None and not (
            isinstance(state, list)
            and len(state) == 3
            and all(isinstance(v, int) for v in state[:2])
            and isinstance(state[2], str)
        ):
            return False
    return True


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _read_frame(sock: socket.socket) -> bytes | None:
    header = _read_exactly(sock, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_RECORD_BYTES + 1:
        raise OSError("evidence frame too large")
    return _read_exactly(sock, size)


# ------------------------------------------------------------ who may give evidence
#: Start-up settings that run code other than the program's in its process, or take away the
#: hook's view of it (the dynamic loader's, and Python's own), or make the interpreter print text
#: of the answer's choosing into the program's output: the verbose import trace prints every
#: folder it searches, and a PYTHONPATH folder named with newlines and the expected line put
#: that line in the output of a program that never printed it (the red team's forge).
FORBIDDEN_ENV = (
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "GCONV_PATH",
    "PYTHONHOME",
    "PYTHONINSPECT",
    "PYTHONSTARTUP",
    "PYTHONEXECUTABLE",
    "PYTHONPLATLIBDIR",
    "PYTHONPYCACHEPREFIX",
    "PYTHONUSERBASE",
    "PYTHONVERBOSE",
    "PYTHONDEBUG",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONDEVMODE",
    "PYTHONMALLOCSTATS",
    "PYTHONDUMPREFS",
    "PYTHONSHOWREFCOUNT",
)
#: Interpreter options that leave the hook out (-E, -I, -S), run code that is not a program
#: file (-c, -i, stdin), or print the interpreter's own trace into the output (-v, -d).
_REFUSED_FLAGS = {
    "c": "-c (code given on the command line)",
    "E": "-E",
    "I": "-I",
    "S": "-S",
    "i": "-i",
    "v": "-v (its import trace prints text of the answer's choosing)",
    "d": "-d (the parser's debug output)",
}
#: -X options that print the interpreter's own trace or statistics into the output.
_REFUSED_X = ("importtime", "dev", "showrefcount", "pycache_prefix")
_FLAGS_WITH_VALUE = set("WXcm")
_PYTHON_NAME = re.compile(r"python[0-9.]*$")


@dataclass(frozen=True)
class Expected:
    """What a genuine run's start looks like: the hook's variable as the judge set it, the
    hook's folder first on PYTHONPATH, and the folders whose programs the answer cannot change."""

    run_value: str
    hook_site: str
    trusted_dirs: tuple[str, ...]


def refusal(image: Image | None, expected: Expected) -> str | None:
    """Why a process with this start may not give evidence, or None when it may: it must be a
    Python interpreter (or a console script with a Python shebang) from a folder the answer
    cannot write, running a program file or module (not -c, not stdin), with the judge's hook
    environment intact and nothing preloaded."""
    if image is None:
        return "no program start of it was seen in the sandbox"
    if image.truncated:
        return "its start was too long to be traced in full"
    path = posixpath.normpath(image.path)
    if not path.startswith("/") or posixpath.dirname(path) not in expected.trusted_dirs:
        return f"it runs {image.path}, not an interpreter or program installed where the answer cannot write"
    env = dict(image.env)
    if env.get(HOOK_ENV) != expected.run_value:
        return f"its environment does not carry the judge's {HOOK_ENV}"
    entries = env.get("PYTHONPATH", "").split(":")
    if entries[0] != expected.hook_site:
        return "its PYTHONPATH does not start with the judge's hook folder"
    if not env.get("PYTHONNOUSERSITE"):
        return "PYTHONNOUSERSITE was unset (the user's site folder is writable and would run code first)"
    for name in env:
        if name in FORBIDDEN_ENV or name.startswith("LD_"):
            return f"it was started with {name} set"
    if not _PYTHON_NAME.match(posixpath.basename(path)):
        if not _python_shebang(path):
            return f"{image.path} is not a Python program"
        return None
    return _python_refusal(image.argv)


def _python_refusal(argv: tuple[str, ...]) -> str | None:
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg == "--":
            break
        if arg == "-" or not arg.startswith("-"):
            return "python reads its program from stdin" if arg == "-" else None
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs":
                args = args[1:]
                continue
            return f"python was started with {arg}"
        cluster = arg[1:]
        for at, flag in enumerate(cluster):
            if flag in _REFUSED_FLAGS:
                return f"python was started with {_REFUSED_FLAGS[flag]}"
            if flag in _FLAGS_WITH_VALUE:
                value = cluster[at + 1 :] or (args.pop(0) if args else "")
                if flag == "m":
                    return None if value else "python -m without a module"
                if flag == "X" and value.split("=", 1)[0] in _REFUSED_X:
                    return f"python was started with -X {value.split('=', 1)[0]}"
                break
    return "python reads its program from stdin" if not args else None


def python_program(argv: tuple[str, ...]) -> tuple[str, str] | None:
    """("script", path) or ("module", name): what a python command line runs."""
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg == "--":
            return ("script", args[0]) if args else None
        if not arg.startswith("-") or arg == "-":
            return ("script", arg) if arg != "-" else None
        if arg.startswith("--"):
            args = args[1:] if arg == "--check-hash-based-pycs" else args
            continue
        cluster = arg[1:]
        for at, flag in enumerate(cluster):
            if flag in _FLAGS_WITH_VALUE:
                value = cluster[at + 1 :] or (args.pop(0) if args else "")
                if flag == "m":
                    return ("module", value)
                if flag == "c":
                    return None
                break
    return None


def runs_invocation(image: Image, ran_files: set[str], invocation: tuple[str, str, str]) -> bool:
    """Whether a process started as `image` runs the gold's program. `invocation` = (mode,
    target, the program's file inside the sandbox, or "" for a module outside the repository).

    A program of the repository runs as `python <file>`, and the process must have run that very
    file, byte for byte the repository's (`ran_files`: what its hook reported running); or as
    `python -m` of its module (the hook names both alike), whose code is checked like any other.
    An installed module runs as `python -m` of it; a console program by its installed script, or
    `python -m` of it.
    A target's records count only from such a process: a `python -m code` fed the answer's code
    from stdin, or any other front end that runs code the hook cannot point to, claims to be the
    target in vain."""
    mode, target, script = invocation
    python = bool(_PYTHON_NAME.match(posixpath.basename(image.path)))
    found = python_program(image.argv) if python else None
    if not python:  # an installed console script: `spacy ...` is `python -m spacy ...`
        return mode in ("console", "module") and posixpath.basename(image.path) == target
    if found is None:
        return False
    kind, value = found
    if mode == "console" or not script:  # an installed module
        return found == ("module", target)
    if kind == "script":
        return posixpath.basename(value) == posixpath.basename(script) and script in ran_files
    # `python -m` of the program's module: the repository's file (its code reported and checked
    # against the repository like any other) or the same module as installed
    path = value.replace(".", "/")
    return script.endswith(("/" + path + ".py", "/" + path + "/__main__.py"))


def _python_shebang(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            first = handle.readline(512)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


# ----------------------------------------------------------------- one judged sandbox
#: Folders the sandbox binds read-only (sandbox/bwrap.py): code from them is not the answer's.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/alternatives")
#: Files the hook reports and the judge compares with the repository before the answer ran.
CODE_SUFFIXES = (".py", ".pyc", ".pyw", ".so", ".pyd")


@dataclass
class Evidence:
    """A run's evidence: what the processes allowed to give it sent (by host pid), and who was
    refused and why."""

    records: list[dict[str, Any]]
    outputs: dict[int, str]
    refused: list[tuple[Connection, str]]
    images: dict[int, Image] = field(default_factory=dict)  # how each accepted process started
    #: How each accepted process ended, as strace saw it on the host: its exit status, or None
    #: (killed by a signal, or still running when the answer's command ended).
    exit_statuses: dict[int, int | None] = field(default_factory=dict)

    def runs(self, pid: int, invocation: tuple[str, str, str]) -> bool:
        """Whether accepted process `pid` was started to run the gold's program (runs_invocation)."""
        image = self.images.get(pid)
        ran = {str(r.get("real")) for r in self.code({pid}) if r.get("same") is True}
        return image is not None and runs_invocation(image, ran, invocation)

    def code(self, pids: set[int]) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") == "code" and r.get("pid") in pids]

    def refused_note(self) -> str:
        """A line on refused senders for a verdict's detail ('' when none)."""
        if not self.refused:
            return ""
        whys = list(dict.fromkeys(f"pid {c.pid}: {why}" for c, why in self.refused))
        return f"; the judge refused what {len(self.refused)} process(es) sent ({'; '.join(whys[:3])})"


class Watch:
    """The watch over one judged sandbox: the evidence socket (in `folder`/chan, to be bound
    read-only into the sandbox) and the exec trace (`folder`/exec.log, on the host only)."""

    def __init__(self, folder: Path, hook_site: Path) -> None:
        self.channel = Path(folder) / "chan"
        self.channel.mkdir()
        self.server = EvidenceServer(self.channel)
        self.trace_log = Path(folder) / "exec.log"
        self.hook_site = str(hook_site)

    def hook_value(self, token: str, mode: str) -> str:
        """The value of the hook's variable for one run ("run") or gold parse ("stop")."""
        return f"{self.server.path}|{token}|{mode}"

    def evidence(self, token: str, mode: str) -> Evidence:
        connections = self.server.collect(token)
        trace = ExecTrace.read(self.trace_log)
        expected = Expected(self.hook_value(token, mode), self.hook_site, interpreter_dirs())
        records: list[dict[str, Any]] = []
        outputs: dict[int, str] = {}
        refused: list[tuple[Connection, str]] = []
        images: dict[int, Image] = {}
        exit_statuses: dict[int, int | None] = {}
        for connection in connections:
            image = trace.image_at(connection.pid, connection.accepted_at)
            why = refusal(image, expected)
            if why is not None or image is None:
                refused.append((connection, why or "no start seen"))
                continue
            images[connection.pid] = image
            exit_statuses[connection.pid] = trace.exit_status(connection.pid, connection.accepted_at)
            for record in connection.records:
                record["pid"] = connection.pid  # what the kernel says, not what the process wrote
                records.append(record)
            text = connection.output.decode("utf-8", "replace")
            outputs[connection.pid] = outputs.get(connection.pid, "") + text
        return Evidence(records, outputs, refused, images, exit_statuses)

    def close(self) -> None:
        self.server.close()


def interpreter_dirs() -> tuple[str, ...]:
    """Where a genuine run's interpreter or console script lives: the sandbox's PATH for Python
    (the environment's bin folders and the system's), all bound read-only."""
    dirs = [str(Path(sys.prefix) / "bin"), str(Path(sys.base_prefix) / "bin")]
    dirs += [str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]
    return tuple(dict.fromkeys(posixpath.normpath(d) for d in dirs))


def code_roots(hook_site: str) -> tuple[str, ...]:
    """Folders whose code the answer cannot have written (bound read-only in the sandbox)."""
    roots = [*SYSTEM_DIRS, hook_site]
    for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        roots += [prefix, os.path.realpath(prefix)]
    return tuple(dict.fromkeys(r.rstrip("/") + "/" for r in roots))


def code_snapshot(workspace: Path) -> dict[str, str]:
    """sha256 of every code file in the workspace (relative path -> digest), taken before the
    answer runs: what the program's code must still be when it runs."""
    found: dict[str, str] = {}
    for root, _dirs, files in os.walk(workspace):
        for name in files:
            if name.endswith(CODE_SUFFIXES):
                path = Path(root) / name
                try:
                    found[str(path.relative_to(workspace))] = hashlib.sha256(path.read_bytes()).hexdigest()
                except OSError:
                    continue
    return found


def tampering(
    code: list[dict[str, Any]], snapshot: dict[str, str], workspace: str, roots: tuple[str, ...], exempt: set[str]
) -> list[str]:
    """What is wrong with the code the judged processes ran: a file of the repository that
    differs from the snapshot (changed, or new), bytes that do not compile to the code that
    ran (the file was swapped while it ran, or its bytecode planted), or code from a folder
    the answer can write outside the repository. `exempt`: the judge's own files (relative)."""
    problems: list[str] = []
    root = workspace.rstrip("/") + "/"
    for record in code:
        real = str(record.get("real") or record.get("path") or "")
        inside = real.startswith(root)
        relative = real[len(root) :] if inside else ""
        if relative in exempt:
            continue
        shown = relative or real
        if record.get("same") is False:
            problems.append(f"{shown}: the code that ran is not what the file holds (swapped while it ran?)")
        elif inside:
            if relative not in snapshot:
                problems.append(f"{shown}: written by the answer (it was not in the repository)")
            elif record.get("sha") != snapshot[relative]:
                problems.append(f"{shown}: changed by the answer")
        elif not (real + "/").startswith(roots) and not real.startswith(roots):
            problems.append(f"{shown}: code from a folder the answer can write")
    return list(dict.fromkeys(problems))
