"""The host tool gateway: how commands in a network-less sandbox reach host-side tools.

Memory (an embedding model too big for the sandbox) and literature search (the network) live
on the host. The harness serves them on a Unix socket whose folder is bound into the sandbox;
`tools/lib/rggateway.py` is the client the commands use. The wire format is one JSON line each
way per connection: `{"tool": NAME, "args": {...}}` in, `{"ok": true, ...}` or
`{"ok": false, "error": "..."}` out.

Only declared tools are served, every request is size-limited (per tool) before it is parsed,
at most 8 calls are served at once, an episode has a call budget, and every call, refused or
not, is logged; the environment drains the log into the step's trajectory line.

Each connection costs a host thread, so connections are bounded before any call limit applies:
at most `MAX_CONNECTIONS` are held at once (more are answered and closed by the accepting
thread, without a thread of their own, and counted in one log record), and a connection's
whole request must arrive within `REQUEST_READ_TIMEOUT_S`, so idle or trickling connections
free their thread quickly.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOCKET_NAME = "gateway.sock"
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
#: The whole request line must arrive within this; the client sends it right after connecting.
REQUEST_READ_TIMEOUT_S = 3.0
#: A reply must be taken by the client within this (it reads as soon as it has sent).
REPLY_WRITE_TIMEOUT_S = 30.0
#: After the reply, what the client still sends (the rest of an oversized request) is read and
#: dropped for at most this long and this much: closing on unread bytes resets the connection,
#: and the client would see the reset instead of the reply.
DRAIN_S, DRAIN_BYTES = 0.5, 1 << 20
MAX_CONCURRENT_CALLS = 8  # calls served at once; more are refused, not queued
#: Connections held (each by one host thread) at once; more are turned away without a thread.
MAX_CONNECTIONS = 16
TURNED_AWAY_DRAIN_BYTES = 1024 * 1024  # what is read from a turned-away connection before closing it
LOGGED_ARG_CHARS = 300


class ToolFailure(Exception):
    """A tool could not do what was asked; the message is shown to the agent as it is."""


@dataclass(frozen=True)
class GatewayTool:
    """A tool the gateway serves: `handler(args)` returns the JSON-able reply fields."""

    name: str
    handler: Callable[[dict[str, Any]], dict[str, Any]]
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES


def _loggable(args: Any) -> Any:
    if isinstance(args, dict):
        return {str(k): _loggable(v) for k, v in list(args.items())[:20]}
    if isinstance(args, list):
        return [_loggable(v) for v in args[:20]]
    if isinstance(args, str) and len(args) > LOGGED_ARG_CHARS:
        return args[:LOGGED_ARG_CHARS] + f"... [{len(args) - LOGGED_ARG_CHARS} more characters]"
    return args


def _read_line(connection: socket.socket, limit: int, deadline: float) -> bytes:
    """The request line (at most `limit` + 1 bytes, so that an oversized one shows), all of it
    by `deadline`: a connection that trickles bytes is held no longer than an idle one."""
    data = bytearray()
    while len(data) <= limit:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        connection.settimeout(remaining)
        chunk = connection.recv(min(1 << 16, limit + 1 - len(data)))
        if not chunk:
            break
        newline = chunk.find(b"\n")
        if newline >= 0:
            data += chunk[: newline + 1]
            break
        data += chunk
    return bytes(data)


def _drain(connection: socket.socket) -> None:
    """Read and drop what the client still sends, until it closes, DRAIN_BYTES or DRAIN_S."""
    deadline, dropped = time.monotonic() + DRAIN_S, 0
    while dropped < DRAIN_BYTES:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        connection.settimeout(remaining)
        chunk = connection.recv(1 << 16)
        if not chunk:
            return
        dropped += len(chunk)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server
    request: socket.socket

    def handle(self) -> None:
        gateway = self.server.gateway
        started = time.perf_counter()
        record: dict[str, Any] = {"tool": None, "ok": False}
        if not gateway._slots.acquire(blocking=False):  # an agent opening connections by the thousand
            try:  # read the request (briefly) so that closing does not reset the connection
                _read_line(
                    self.request, DEFAULT_MAX_REQUEST_BYTES, time.monotonic() + min(1.0, gateway.request_timeout_s)
                )
            except OSError:
                pass
            reply = {
                "ok": False,
                "error": f"more than {MAX_CONCURRENT_CALLS} tool calls at once; make them one after another",
            }
        else:
            try:
                reply = gateway._serve(self.request, record)
            except Exception as exc:  # a handler bug must not kill the gateway; the agent sees why
                reply = {"ok": False, "error": f"the tool failed: {type(exc).__name__}: {exc}"}
            finally:
                gateway._slots.release()
        body = json.dumps(reply).encode() + b"\n"
        if len(body) > MAX_RESPONSE_BYTES:
            reply = {
                "ok": False,
                "error": f"the reply ({len(body)} bytes) exceeds the gateway's {MAX_RESPONSE_BYTES}-byte limit",
            }
            body = json.dumps(reply).encode() + b"\n"
        record.update(
            ok=bool(reply.get("ok")), response_bytes=len(body), seconds=round(time.perf_counter() - started, 4)
        )
        if not reply.get("ok"):
            record["error"] = str(reply.get("error", ""))[:500]
        gateway._log(record)
        try:
            self.request.settimeout(REPLY_WRITE_TIMEOUT_S)
            self.request.sendall(body)
            self.request.shutdown(socket.SHUT_WR)  # the reply is all: the client reads it to the end
            _drain(self.request)
        except OSError:
            pass  # the client went away (or does not read); the call is logged all the same


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """One thread per held connection, at most `MAX_CONNECTIONS` of them; a connection over the
    cap is answered and closed by the accepting thread itself."""

    daemon_threads = True
    request_queue_size = 64  # the listen backlog: a burst of calls waits here (no thread) to be accepted
    gateway: ToolGateway

    def __init__(self, path: str) -> None:
        super().__init__(path, _Handler)
        self._held = 0
        self._held_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        with self._held_lock:
            admitted = self._held < MAX_CONNECTIONS
            if admitted:
                self._held += 1
        if not admitted:
            self.gateway._turn_away(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started (the host is out of threads): free the place
            self._release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._held_lock:
            self._held -= 1


class ToolGateway:
    """Serves the declared tools on a Unix socket in a private folder (`folder`), one thread
    per held connection (at most `MAX_CONNECTIONS`), until `close()`."""

    def __init__(
        self, tools: list[GatewayTool], *, max_calls: int = 1000, request_timeout_s: float = REQUEST_READ_TIMEOUT_S
    ) -> None:
        if not tools:
            raise ValueError("a gateway needs at least one declared tool")
        self.tools = {tool.name: tool for tool in tools}
        self.max_calls = max_calls
        self.request_timeout_s = request_timeout_s
        self.calls = 0
        self._pending: list[dict[str, Any]] = []
        self._turned_away: dict[str, Any] | None = None  # this drain's record of refused connections
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT_CALLS)
        self._tmp = tempfile.TemporaryDirectory(prefix="researchgym-gateway-")
        self.folder = Path(self._tmp.name)
        self.socket_path = self.folder / SOCKET_NAME
        self._server = _Server(str(self.socket_path))
        self._server.gateway = self
        os.chmod(self.socket_path, 0o666)  # the sandbox's user must be able to connect
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="researchgym-gateway", kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ serving
    def _serve(self, connection: socket.socket, record: dict[str, Any]) -> dict[str, Any]:
        limit = max(tool.max_request_bytes for tool in self.tools.values())
        try:
            line = _read_line(connection, limit, time.monotonic() + self.request_timeout_s)
        except OSError:  # TimeoutError included
            return {"ok": False, "error": f"no request arrived within {self.request_timeout_s:g} s"}
        record["request_bytes"] = len(line)
        if len(line) > limit:
            return {
                "ok": False,
                "error": f"the request is larger than the gateway's {limit}-byte limit; "
                "send less (shorter text, fewer results)",
            }
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "the request is not one line of JSON"}
        if not isinstance(request, dict) or not isinstance(request.get("args", {}), dict):
            return {"ok": False, "error": 'a request is {"tool": NAME, "args": {...}}'}
        name = str(request.get("tool"))
        record["tool"], record["args"] = name, _loggable(request.get("args", {}))
        tool = self.tools.get(name)
        if tool is None:
            return {
                "ok": False,
                "error": f"the tool '{name}' is not declared for this run; declared: {', '.join(sorted(self.tools))}",
            }
        if len(line) > tool.max_request_bytes:
            return {
                "ok": False,
                "error": f"the request ({len(line)} bytes) exceeds the {tool.max_request_bytes}-byte "
                f"limit of {name}; send less",
            }
        with self._lock:
            if self.calls >= self.max_calls:
                return {"ok": False, "error": f"this episode has used its {self.max_calls} gateway calls"}
            self.calls += 1
        try:
            return {"ok": True, **tool.handler(request.get("args", {}))}
        except ToolFailure as exc:
            return {"ok": False, "error": str(exc)}

    def _log(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._pending.append(record)

    def _turn_away(self, connection: socket.socket) -> None:
        """Answer a connection over the cap without waiting for anything: read what it has sent
        already (closing on unread data would reset it before it reads the reason), write the
        reason, and let the caller close it. One log record per drain counts them all."""
        with self._lock:
            if self._turned_away is None:
                self._turned_away = {
                    "tool": None,
                    "ok": False,
                    "error": f"connections refused: more than {MAX_CONNECTIONS} open at once",
                    "refused_connections": 0,
                }
                self._pending.append(self._turned_away)
            self._turned_away["refused_connections"] += 1
        reply = {
            "ok": False,
            "error": f"more than {MAX_CONNECTIONS} connections to the gateway at once; make calls one after another",
        }
        try:
            connection.setblocking(False)
            drained = 0
            while drained < TURNED_AWAY_DRAIN_BYTES:
                chunk = connection.recv(1 << 16)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:  # BlockingIOError: nothing more has arrived
            pass
        try:
            connection.send(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass

    # ------------------------------------------------------------------ host side
    def drain(self) -> list[dict[str, Any]]:
        """The calls logged since the last drain, oldest first."""
        with self._lock:
            calls, self._pending, self._turned_away = self._pending, [], None
        return calls

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._tmp.cleanup()

    def __enter__(self) -> ToolGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
