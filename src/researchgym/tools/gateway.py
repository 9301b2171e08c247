"""The host tool gateway: how commands in a network-less sandbox reach host-side tools.

Memory (an embedding model too big for the sandbox) and literature search (the network) live
on the host. The harness serves them on a Unix socket whose folder is bound into the sandbox;
`tools/lib/rggateway.py` is the client the commands use. The wire format is one JSON line each
way per connection: `{"tool": NAME, "args": {...}}` in, `{"ok": true, ...}` or
`{"ok": false, "error": "..."}` out.

Only declared tools are served, every request is size-limited (per tool) before it is parsed,
at most 8 calls are served at once, an episode has a call budget, and every call, refused or
not, is logged; the environment
drains the log into the step's trajectory line.
"""

from __future__ import annotations

import json
import os
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
REQUEST_READ_TIMEOUT_S = 10.0
MAX_CONCURRENT_CALLS = 8  # connections served at once; more are refused, not queued
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


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.connection.settimeout(REQUEST_READ_TIMEOUT_S)
        gateway = self.server.gateway
        started = time.perf_counter()
        record: dict[str, Any] = {"tool": None, "ok": False}
        if not gateway._slots.acquire(blocking=False):  # an agent opening connections by the thousand
            self.connection.settimeout(1.0)
            try:  # read the request (briefly) so that closing does not reset the connection
                self.rfile.readline(DEFAULT_MAX_REQUEST_BYTES)
            except OSError:
                pass
            reply = {
                "ok": False,
                "error": f"more than {MAX_CONCURRENT_CALLS} tool calls at once; make them one after another",
            }
        else:
            try:
                reply = gateway._serve(self.rfile, record)
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
            self.wfile.write(body)
        except OSError:
            pass  # the client went away; the call is logged all the same


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    gateway: ToolGateway


class ToolGateway:
    """Serves the declared tools on a Unix socket in a private folder (`folder`), one thread
    per connection, until `close()`."""

    def __init__(self, tools: list[GatewayTool], *, max_calls: int = 1000) -> None:
        if not tools:
            raise ValueError("a gateway needs at least one declared tool")
        self.tools = {tool.name: tool for tool in tools}
        self.max_calls = max_calls
        self.calls = 0
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT_CALLS)
        self._tmp = tempfile.TemporaryDirectory(prefix="researchgym-gateway-")
        self.folder = Path(self._tmp.name)
        self.socket_path = self.folder / SOCKET_NAME
        self._server = _Server(str(self.socket_path), _Handler)
        self._server.gateway = self
        os.chmod(self.socket_path, 0o666)  # the sandbox's user must be able to connect
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="researchgym-gateway", kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ serving
    def _serve(self, rfile, record: dict[str, Any]) -> dict[str, Any]:
        limit = max(tool.max_request_bytes for tool in self.tools.values())
        try:
            line = rfile.readline(limit + 1)
        except (TimeoutError, OSError):
            return {"ok": False, "error": f"no request arrived within {REQUEST_READ_TIMEOUT_S:g} s"}
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

    # ------------------------------------------------------------------ host side
    def drain(self) -> list[dict[str, Any]]:
        """The calls logged since the last drain, oldest first."""
        with self._lock:
            calls, self._pending = self._pending, []
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
