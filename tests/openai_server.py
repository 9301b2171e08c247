"""A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions protocol, for tests.

It answers from a queue of scripted replies and can inject failures first: a 429 with a
Retry-After header, a 500, a reply slower than the client's timeout, or a 400 context-length
error. Every request it receives is kept, so tests can check what the client sent.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    status: int = 500
    retry_after: float | None = None
    delay_s: float = 0.0
    message: str = "injected failure"
    #: Sent as the body (status 200, JSON content type) instead of an error: e.g. cut-off JSON.
    raw: bytes | None = None


@dataclass
class ChatServer:
    replies: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: Reported usage: prompt tokens are a crude count of the request's words.
    completion_tokens: int | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next(self) -> tuple[Fault | None, str | None]:
        with self._lock:
            if self.faults:
                return self.faults.pop(0), None
            return None, (self.replies.pop(0) if self.replies else None)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                with server._lock:
                    server.requests.append(payload)
                fault, reply = server._next()
                if fault is not None:
                    if fault.delay_s:
                        time.sleep(fault.delay_s)
                    if fault.raw is not None:
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(fault.raw)))
                        self.end_headers()
                        try:
                            self.wfile.write(fault.raw)
                        except (BrokenPipeError, ConnectionResetError):
                            pass
                        return
                    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                    kind = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(fault.status, "server_error")
                    code = "context_length_exceeded" if "context" in fault.message else kind
                    self._send(fault.status, {"error": {"message": fault.message, "type": kind, "code": code}}, headers)
                    return
                if reply is None:
                    self._send(
                        500,
                        {"error": {"message": "the test server has no scripted reply left", "type": "server_error"}},
                    )
                    return
                prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in payload.get("messages", []))
                completion_tokens = server.completion_tokens or max(1, len(reply.split()))
                self._send(
                    200,
                    {
                        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": payload.get("model", "test-model"),
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}
                        ],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens,
                            "total_tokens": prompt_tokens + completion_tokens,
                        },
                    },
                )

        return Handler
