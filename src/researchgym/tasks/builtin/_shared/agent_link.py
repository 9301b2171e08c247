"""The narrow channel between an evaluator and the agent's code it scores.

In an evaluation, researchgym runs the agent's code (a game strategy, a SAT heuristic, an RL
policy) in a sandbox of its own that holds the artefact and nothing hidden, and the evaluator
in another sandbox that holds the hidden files and runs no agent code at all. The host joins
them with two pipes and nothing else:

* the evaluator finds its ends in ``RESEARCHGYM_AGENT_LINK`` ("to_agent_fd,from_agent_fd") and
  opens them with ``AgentLink.open(...)``;
* the agent's side (a small server shipped with the task, which imports the agent's code) has
  them as its stdin and stdout and opens them with ``AgentEnd.from_stdio()``, which also sends
  anything the agent's code prints to stderr, away from the protocol.

Messages are frames: a 4-byte big-endian length, then that many bytes (JSON for most tasks).
Everything the evaluator receives is data to check: sizes are capped, JSON is parsed strictly
(finite numbers, bounded nesting) and every wait has a deadline, so no answer from the agent's
side can crash, stall or steer the evaluator.

The evaluator reports its result with ``report()`` / ``report_error()``: in an evaluation they
write the file named by ``RESEARCHGYM_RESULT_FILE``, which only the evaluator's sandbox can
reach, and researchgym reads the result from there alone. Run by hand (no link in the
environment, e.g. ``python evaluate.py`` in the agent's workspace), ``AgentLink.open`` starts the
agent's server as a plain subprocess and ``report`` prints one JSON line.

Copied into the evaluation folders beside evaluate.py (see each task's ``evaluation.files``
and ``evaluation.agent_code.files``); standard library only.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import struct
import subprocess
import sys
import time
from typing import Any

LINK_VARIABLE = "RESEARCHGYM_AGENT_LINK"
#: The link to a second, fresh copy of the agent's code (`agent_code.witness` in the task).
WITNESS_LINK_VARIABLE = "RESEARCHGYM_AGENT_WITNESS_LINK"
RESULT_VARIABLE = "RESEARCHGYM_RESULT_FILE"
#: The largest frame either side accepts unless the caller says otherwise.
MAX_FRAME = 64 << 20
MAX_DEPTH = 64
_HEADER = struct.Struct(">I")


class LinkError(Exception):
    """The agent's side broke the protocol, died, or did not answer in time."""


# ------------------------------------------------------------------------ strict JSON
def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _too_deep(text: str, max_depth: int) -> bool:
    """Whether [ and { nest deeper than `max_depth` outside strings (json.loads would recurse
    that deep). At C speed: strings and everything but brackets are cut away, then each pass
    removes the innermost level; what is left after `max_depth` passes is too deep (or does not
    match, which json.loads would refuse anyway)."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets = brackets.replace("[]", "").replace("{}", "")
    return bool(brackets)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is not a finite number")
    return value


_LONG_DIGITS = re.compile(r"[0-9]{309}")
#: Every digit as "0", every other byte as " ": a run of 309 zeros is a number of 309 digits.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))


def has_long_digits(data: bytes) -> bool:
    """Whether `data` holds a run of more than 308 digits, at C speed (a regular expression
    costs 2-3 ms on a round's quarter megabyte of moves; this, a tenth of a millisecond)."""
    return b"0" * 309 in data.translate(_DIGITS_AS_ZEROS)


def _long_number(text: str) -> bool:
    """Whether a number outside strings has more than 308 digits (an integer beyond any float;
    no metric, count or move is that long)."""
    return _LONG_DIGITS.search(text) is not None and _LONG_DIGITS.search(_STRING.sub("", text)) is not None


def strict_loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """JSON with finite numbers only (no NaN, Infinity, 1e999, no integer beyond a float's range)
    and at most `max_depth` levels of nesting. ValueError otherwise."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    if _too_deep(text, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    if _long_number(text):
        raise ValueError("a number of more than 308 digits")
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()


# ------------------------------------------------------------------------ the evaluator's end
#: The pipe capacity asked for: a round of moves (a quarter of a megabyte) fits, so neither side
#: waits for the other to read before it goes on (the default 64 KiB would make it wait).
PIPE_BYTES = 1 << 20


def _widen(fd: int) -> None:
    """Ask for a pipe of PIPE_BYTES; where that is refused (a lower system limit, not a pipe),
    it stays as it is: only slower."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (OSError, ImportError):
        pass


class AgentLink:
    """The evaluator's end of the link: send requests, receive answers with deadlines."""

    def __init__(self, to_agent: int, from_agent: int, process: subprocess.Popen[bytes] | None = None) -> None:
        self.to_agent, self.from_agent, self.process = to_agent, from_agent, process
        os.set_blocking(self.to_agent, False)
        os.set_blocking(self.from_agent, False)
        for fd in (self.to_agent, self.from_agent):
            _widen(fd)
        self._buffer = bytearray()

    @classmethod
    def open(cls, local_command: list[str], variable: str = LINK_VARIABLE) -> "AgentLink":
        """The link researchgym set up (named by `variable`), or, run by hand, `local_command`
        started in this folder."""
        value = os.environ.pop(variable, None)
        if value:
            to_agent, from_agent = (int(part) for part in value.split(","))
            return cls(to_agent, from_agent)
        process = subprocess.Popen(local_command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   env={k: v for k, v in os.environ.items() if not k.startswith("RESEARCHGYM_")})
        assert process.stdin is not None and process.stdout is not None
        return cls(process.stdin.fileno(), process.stdout.fileno(), process)

    def send(self, payload: bytes, timeout_s: float) -> None:
        """Write one frame; LinkError if the agent's side stops reading for `timeout_s`."""
        data = memoryview(_HEADER.pack(len(payload)) + payload)
        deadline = time.monotonic() + timeout_s
        while data:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([], [self.to_agent], [], left)[1]:
                raise LinkError(f"the agent's code stopped reading its input for {timeout_s:g}s")
            try:
                written = os.write(self.to_agent, data[:1 << 16])
            except BlockingIOError:
                continue
            except OSError as exc:  # EPIPE: the other side is gone
                raise LinkError(f"the agent's code closed its input ({exc.strerror or exc})") from None
            data = data[written:]

    def _fill(self, wanted: int, deadline: float, doing: str) -> None:
        while len(self._buffer) < wanted:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_agent], [], [], left)[0]:
                raise LinkError(f"the agent's code did not {doing} in time")
            try:
                chunk = os.read(self.from_agent, max(1 << 16, min(wanted - len(self._buffer), 1 << 22)))
            except BlockingIOError:
                continue
            if not chunk:
                raise LinkError(f"the agent's code exited before it could {doing} (its error output is shown)")
            self._buffer += chunk

    def receive(self, timeout_s: float, limit: int = MAX_FRAME, doing: str = "answer") -> bytes:
        """One frame of at most `limit` bytes, within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        self._fill(_HEADER.size, deadline, doing)
        (size,) = _HEADER.unpack(self._buffer[:_HEADER.size])
        if size > limit:
            raise LinkError(f"the agent's code sent {size:,} bytes; at most {limit:,} are accepted here")
        self._fill(_HEADER.size + size, deadline, doing)
        frame = bytes(self._buffer[_HEADER.size:_HEADER.size + size])
        del self._buffer[:_HEADER.size + size]
        return frame

    def send_json(self, value: Any, timeout_s: float) -> None:
        self.send(dumps(value), timeout_s)

    def receive_json(self, timeout_s: float, limit: int = MAX_FRAME, doing: str = "answer") -> Any:
        frame = self.receive(timeout_s, limit, doing)
        try:
            return strict_loads(frame)
        except (ValueError, RecursionError) as exc:
            raise LinkError(f"the agent's code sent an answer that is not valid JSON here: {exc}") from None

    def ask(self, value: Any, timeout_s: float, limit: int = MAX_FRAME, doing: str = "answer") -> Any:
        """Send a JSON request and wait for its JSON answer; the whole exchange within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        self.send_json(value, timeout_s)
        return self.receive_json(max(deadline - time.monotonic(), 0.001), limit, doing)

    def close(self) -> None:
        if self.process is not None:  # started by hand: its pipes are the process's to close
            self.process.kill()
            self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
            return
        for fd in (self.to_agent, self.from_agent):
            try:
                os.close(fd)
            except OSError:
                pass


# ------------------------------------------------------------------------ the agent's end
class AgentEnd:
    """The agent's side of the link, in the agent's sandbox: blocking frames over stdin/stdout."""

    def __init__(self, inbox: int, outbox: int) -> None:
        self.inbox, self.outbox = inbox, outbox

    @classmethod
    def from_stdio(cls) -> "AgentEnd":
        """Take stdin and stdout for the protocol; whatever the agent's code prints (or reads)
        afterwards goes to stderr (or reads nothing)."""
        inbox, outbox = os.dup(0), os.dup(1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        return cls(inbox, outbox)

    def _read(self, size: int) -> bytes | None:
        data = bytearray()
        while len(data) < size:
            chunk = os.read(self.inbox, size - len(data))
            if not chunk:
                return None
            data += chunk
        return bytes(data)

    def receive(self) -> bytes | None:
        """The next frame, or None when the evaluator has closed the link."""
        header = self._read(_HEADER.size)
        if header is None:
            return None
        return self._read(_HEADER.unpack(header)[0])

    def send(self, payload: bytes) -> None:
        data = memoryview(_HEADER.pack(len(payload)) + payload)
        while data:
            data = data[os.write(self.outbox, data):]

    def receive_json(self) -> Any:
        frame = self.receive()
        return None if frame is None else json.loads(frame)

    def send_json(self, value: Any) -> None:
        self.send(json.dumps(value).encode())


# ------------------------------------------------------------------------ the result
def _emit(result: dict[str, Any]) -> None:
    path = os.environ.get(RESULT_VARIABLE)
    if not path:
        print(json.dumps(result), flush=True)
        return
    # O_EXCL: a result is written once; a second report fails instead of replacing the first.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(json.dumps(result, allow_nan=False))


def _non_finite(value: Any, where: str) -> list[str]:
    """Where `value` holds NaN or an infinity (a policy whose returns overflowed, say)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where} = {value}"]
    if isinstance(value, dict):
        return [bad for key, item in value.items() for bad in _non_finite(item, f"{where}.{key}" if where else str(key))]
    if isinstance(value, (list, tuple)):
        return [bad for index, item in enumerate(value) for bad in _non_finite(item, f"{where}[{index}]")]
    return []


def report(metrics: dict[str, Any]) -> None:
    """The evaluation's result: metric name -> finite number (other keys may hold details). A
    non-finite number anywhere fails the evaluation under its own status, naming it."""
    bad = _non_finite(metrics, "")
    if bad:
        report_error(
            f"the evaluation produced {', '.join(bad[:5])}: every metric must be a finite number",
            status="evaluation_non_finite",
        )
        return
    _emit(metrics)


def report_error(message: str, status: str = "evaluation_format_error") -> None:
    """The submission cannot be scored; `status` is one researchgym knows (evaluation_error,
    evaluation_format_error, evaluation_non_finite, submission_not_found)."""
    print(f"evaluation failed: {message}", file=sys.stderr, flush=True)
    _emit({"error": message, "status": status})
