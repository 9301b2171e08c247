"""`researchgym view RUN_DIR`: a local web server for one run folder.

It serves the static front end (static/) and a small JSON API over `RunData`:

    GET /api/overview                                  the run: episodes, score tables, AUP
    GET /api/episodes/<id>                             one episode, observations cut for the page
    GET /api/episodes/<id>/steps/<n>/observation       one step's full observation (text)
    GET /api/mlbench                                   ML-Bench: pass@k, per repository, failed checks
    GET /api/mlbench/answers                           every judged answer (no code or reply)
    GET /api/mlbench/answers/<key>                     one answer: checks, code, reply, details

Nothing is served by path: static files come from a fixed list, episodes by id, ML-Bench
answers by key (letters, digits, `_`, `.`, `-` only; anything else is a 400). Bound to
127.0.0.1 unless told otherwise. Every answer is strict JSON: a NaN or an infinity a run
recorded (before evaluation refused them, or imported) is served as null.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from researchgym.strict_json import strict_dumps
from researchgym.viewer.data import NotFound, RunData

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
ANSWER_KEY = re.compile(r"[A-Za-z0-9_.-]{1,200}")


class _Handler(BaseHTTPRequestHandler):
    server: ViewerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet: the CLI prints the address once
        pass

    def do_GET(self) -> None:  # noqa: N802
        raw = self.path.split("?", 1)[0]
        parts = [urllib.parse.unquote(p) for p in raw.split("/") if p]
        if any(p in ("..", ".") or "/" in p or "\\" in p or "\x00" in p for p in parts):
            return self._send(400, {"error": "bad path"})
        try:
            if not parts or parts == ["index.html"]:
                return self._file("index.html")
            if len(parts) == 2 and parts[0] == "static" and parts[1] in STATIC_FILES:
                return self._file(parts[1])
            if parts[0] != "api":
                return self._send(404, {"error": "not found"})
            data = self.server.data
            if parts[1:] == ["overview"]:
                return self._send(200, data.overview())
            if len(parts) == 3 and parts[1] == "episodes":
                return self._send(200, data.episode(parts[2]))
            if len(parts) == 6 and parts[1] == "episodes" and parts[3] == "steps" and parts[5] == "observation":
                try:
                    step = int(parts[4])
                except ValueError:
                    return self._send(400, {"error": "a step is a number"})
                return self._send_text(data.observation(parts[2], step))
            if parts[1:] == ["mlbench"]:
                return self._send(200, data.mlbench_summary())
            if parts[1:] == ["mlbench", "answers"]:
                return self._send(200, data.mlbench_answers())
            if len(parts) == 4 and parts[1:3] == ["mlbench", "answers"]:
                if not ANSWER_KEY.fullmatch(parts[3]):
                    return self._send(400, {"error": "an answer key is letters, digits, '_', '.' and '-'"})
                return self._send(200, data.mlbench_answer(parts[3]))
            return self._send(404, {"error": "not found"})
        except NotFound as exc:
            return self._send(404, {"error": str(exc)})

    def _file(self, name: str) -> None:
        body = (STATIC / name).read_bytes()
        self._write(200, body, STATIC_FILES[name])

    def _send(self, status: int, payload: Any) -> None:
        self._write(status, strict_dumps(payload, default=str).encode(), "application/json")

    def _send_text(self, text: str) -> None:
        self._write(200, text.encode("utf-8", "replace"), "text/plain; charset=utf-8")

    def _write(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # a running run changes under us
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)


class ViewerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, run_dir: str | Path, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.data = RunData(run_dir)
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}/"

    def start(self) -> ViewerServer:
        """Serve in a background thread (tests, notebooks); `serve_forever()` blocks instead."""
        threading.Thread(target=self.serve_forever, daemon=True, name="researchgym-viewer").start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
