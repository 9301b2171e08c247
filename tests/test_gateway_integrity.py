"""The gateway as a door to the host, attacked: DNS rebinding and private addresses in the PDF
fetcher, and connection floods on the gateway's socket.

Real sockets and real servers throughout. The one stand-in is the DNS answer (made-up names
answer what each test says, call by call). A loopback address, 127.0.0.2, stands in for a
public host (the fetcher is told to treat it as public); 127.0.0.1 on the same port plays the
host's own service, and must never see a connection.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from researchgym.tools.docs import TOOLS_LIB
from researchgym.tools.gateway import (
    MAX_CONCURRENT_CALLS,
    MAX_CONNECTIONS,
    REQUEST_READ_TIMEOUT_S,
    GatewayTool,
    ToolFailure,
    ToolGateway,
)
from researchgym.tools.literature import fetch_pdf, forbidden_address

PUBLIC = "127.0.0.2"  # treated as public by `stand_in`
PUBLIC_PDF = b"%PDF-1.4 from the public host\n%%EOF\n"
LOOPBACK_PDF = b"%PDF-1.4 from the host's own service\n%%EOF\n"
SECRET = "HOST-SECRET-7f3a"


def stand_in(address: str) -> bool:
    """The production policy, except that PUBLIC counts as a public address."""
    return address != PUBLIC and forbidden_address(address)


# ----------------------------------------------------------------- servers and DNS
class _Serve(BaseHTTPRequestHandler):
    server: _Recorder

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append((self.path, self.headers.get("Host")))
        path, _, query = self.path.partition("?")
        if path == "/redirect":
            self.send_response(302)
            self.send_header("Location", urllib.parse.unquote(query.removeprefix("to=")))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path == "/paper.pdf":
            status, kind, body = 200, "application/pdf", self.server.body
        elif path == "/page":
            status, kind, body = 200, f"text/html; charset={SECRET}", f"<html>{SECRET}</html>".encode()
        else:
            status, kind, body = 404, "text/plain", SECRET.encode()
        self.send_response(status, SECRET)  # the reason phrase is the server's text too
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Recorder(ThreadingHTTPServer):
    """An HTTP server that counts every connection it accepts and records every request."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], body: bytes, tls: ssl.SSLContext | None = None) -> None:
        self.body = body
        self.connections = 0
        self.requests: list[tuple[str, str | None]] = []
        super().__init__(address, _Serve)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def server_bind(self) -> None:  # no reverse lookup of the name, as HTTPServer would do
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def hosts():
    """(public, loopback): two servers on one port, at PUBLIC and at 127.0.0.1."""
    for _ in range(20):
        public = _Recorder((PUBLIC, 0), PUBLIC_PDF)
        try:
            loopback = _Recorder(("127.0.0.1", public.server_address[1]), LOOPBACK_PDF)
        except OSError:  # that port is taken on 127.0.0.1: try another
            public.stop()
            continue
        break
    else:
        pytest.fail("no port free on both 127.0.0.1 and 127.0.0.2")
    yield public, loopback
    public.stop()
    loopback.stop()


class _Dns:
    """Made-up names answer their listed answers in turn (the last one repeats); other names
    (numeric addresses) go to the real resolver."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.calls: Counter[str] = Counter()
        self._real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", self.getaddrinfo)

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        if host not in self.answers:
            return self._real(host, port, family, type, proto, flags)
        turn = self.calls[host]
        self.calls[host] += 1
        answer = self.answers[host][min(turn, len(self.answers[host]) - 1)]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
            for a in answer
        ]


@pytest.fixture
def dns(monkeypatch):
    return _Dns(monkeypatch)


def fetch(url: str, **options) -> bytes:
    options.setdefault("forbidden", stand_in)
    return fetch_pdf(url, max_bytes=1024 * 1024, timeout_s=5, **options)


def redirect(port: int, to: str) -> str:
    return f"http://{PUBLIC}:{port}/redirect?to={urllib.parse.quote(to, safe='')}"


# ------------------------------------------------------------------ DNS rebinding
def test_a_name_that_rebinds_to_loopback_is_fetched_from_the_address_that_was_checked(hosts, dns):
    public, loopback = hosts
    port = public.server_address[1]
    dns.answers["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]  # public for the check, loopback after
    assert fetch(f"http://rebind.test:{port}/paper.pdf") == PUBLIC_PDF
    assert dns.calls["rebind.test"] == 1  # looked up once: the connection used the checked answer
    assert public.requests == [("/paper.pdf", f"rebind.test:{port}")]  # the name stays in the Host header
    # the next fetch looks the name up afresh and now gets loopback: refused before connecting
    with pytest.raises(ToolFailure, match=r"rebind\.test \(127\.0\.0\.1\) is a local or private address"):
        fetch(f"http://rebind.test:{port}/paper.pdf")
    assert loopback.connections == 0 and loopback.requests == []


def test_allow_private_still_connects_to_the_one_address_it_looked_up(hosts, dns):
    public, loopback = hosts
    dns.answers["pinned.test"] = [["127.0.0.1"], [PUBLIC]]
    url = f"http://pinned.test:{public.server_address[1]}/paper.pdf"
    assert fetch(url, allow_private=True, forbidden=None) == LOOPBACK_PDF
    assert dns.calls["pinned.test"] == 1 and public.connections == 0


def test_a_redirect_is_resolved_checked_and_pinned_like_the_first_request(hosts, dns):
    public, loopback = hosts
    port = public.server_address[1]
    dns.answers["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]
    dns.answers["inside.test"] = [["127.0.0.1"]]
    assert fetch(redirect(port, f"http://rebind.test:{port}/paper.pdf")) == PUBLIC_PDF
    assert public.requests[-1] == ("/paper.pdf", f"rebind.test:{port}") and dns.calls["rebind.test"] == 1
    with pytest.raises(ToolFailure, match=r"redirected to inside\.test \(127\.0\.0\.1\), a local or private"):
        fetch(redirect(port, f"http://inside.test:{port}/paper.pdf"))
    with pytest.raises(ToolFailure, match=r"redirected to 127\.0\.0\.1, a local or private address"):
        fetch(redirect(port, f"http://127.0.0.1:{port}/paper.pdf"))
    with pytest.raises(ToolFailure, match="not an http"):  # no FTP, file or data handler to fall back on
        fetch(redirect(port, f"ftp://127.0.0.1:{port}/paper.pdf"))
    with pytest.raises(ToolFailure, match="redirected more than 5 times"):
        url = f"http://{PUBLIC}:{port}/paper.pdf"
        for _ in range(6):
            url = redirect(port, url)
        fetch(url)
    assert loopback.connections == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")
def test_https_keeps_the_name_for_sni_and_the_certificate_while_connecting_to_the_checked_address(
    hosts, dns, tmp_path, monkeypatch
):
    _public, loopback = hosts
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=paper.test"]
        + ["-addext", "subjectAltName=DNS:paper.test"],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the fetcher's default context trusts it
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    names: list[str | None] = []
    tls.sni_callback = lambda _socket, name, _context: names.append(name)
    server = _Recorder((PUBLIC, 0), PUBLIC_PDF, tls=tls)
    port = server.server_address[1]
    try:
        dns.answers["paper.test"] = [[PUBLIC], ["127.0.0.1"]]
        dns.answers["other.test"] = [[PUBLIC]]
        assert fetch(f"https://paper.test:{port}/paper.pdf") == PUBLIC_PDF
        assert names == ["paper.test"] and server.requests == [("/paper.pdf", f"paper.test:{port}")]
        with pytest.raises(ToolFailure, match="certificate verify failed"):  # the name is checked, not the address
            fetch(f"https://other.test:{port}/paper.pdf")
    finally:
        server.stop()
    assert dns.calls["paper.test"] == 1 and loopback.connections == 0


@pytest.mark.parametrize("answer", [["::ffff:127.0.0.1"], ["::1"], [PUBLIC, "127.0.0.1"], ["127.0.0.1", PUBLIC]])
def test_a_name_with_any_loopback_address_among_its_answers_is_refused(hosts, dns, answer):
    public, loopback = hosts
    dns.answers["several.test"] = [answer]
    with pytest.raises(ToolFailure, match="local or private address"):
        fetch(f"http://several.test:{public.server_address[1]}/paper.pdf")
    assert public.connections == 0 and loopback.connections == 0


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "[::1]", "127.1", "2130706433", "[::ffff:7f00:1]"])
def test_loopback_written_any_way_in_the_url_is_refused(hosts, host):
    public, loopback = hosts
    with pytest.raises(ToolFailure, match="local or private address"):
        fetch(f"http://{host}:{public.server_address[1]}/paper.pdf")
    assert loopback.connections == 0


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:10.0.0.1", True),
        ("2002:7f00:1::1", True),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 around 169.254.169.254
        ("0.0.0.0", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("10.1.2.3", True),
        ("192.168.1.1", True),
        ("224.0.0.1", True),
        ("fe80::1%lo", True),
        ("fc00::1", True),
        ("fec0::1", True),
        ("not an address", True),
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_the_address_policy(address, refused):
    assert forbidden_address(address) is refused


# ------------------------------------------------------------ what a refusal shows
def test_nothing_of_a_refused_answer_is_shown(hosts):
    public, _loopback = hosts
    base = f"http://{PUBLIC}:{public.server_address[1]}"
    with pytest.raises(ToolFailure) as page:
        fetch(f"{base}/page")
    message = str(page.value)
    assert "did not return a PDF" in message and "text/html" in message and "bytes" in message
    with pytest.raises(ToolFailure) as missing:
        fetch(f"{base}/missing")
    assert "HTTP 404" in str(missing.value)
    for refusal in (page.value, missing.value):
        assert SECRET not in str(refusal)


def test_a_service_that_does_not_speak_http_is_not_quoted():
    class Banner(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(f"-ERR {SECRET} unknown command\r\n".encode())

    server = socketserver.ThreadingTCPServer((PUBLIC, 0), Banner)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        with pytest.raises(ToolFailure, match="not valid HTTP") as refused:
            fetch(f"http://{PUBLIC}:{server.server_address[1]}/paper.pdf")
    finally:
        server.shutdown()
        server.server_close()
    assert SECRET not in str(refused.value)


# ------------------------------------------------------------ connection floods
def _client():
    spec = importlib.util.spec_from_file_location("rggateway_integrity", TOOLS_LIB / "rggateway.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _wait_for(condition, guard_s: float = 30.0) -> None:
    deadline = time.monotonic() + guard_s
    while not condition():
        assert time.monotonic() < deadline, "the gateway did not settle within the guard time"
        time.sleep(0.05)


def test_idle_connections_cost_at_most_the_connection_cap_in_threads(monkeypatch):
    assert REQUEST_READ_TIMEOUT_S <= 5  # the production default drops idle connections quickly too
    client = _client()
    margin = 3
    python_before, os_before = threading.active_count(), _os_threads()
    idle: list[socket.socket] = []
    with ToolGateway([GatewayTool("echo", lambda args: {"output": "x"})], request_timeout_s=1.0) as gateway:
        monkeypatch.setenv("RESEARCHGYM_GATEWAY", str(gateway.socket_path))
        most_python, most_os = 0, 0
        try:
            for _ in range(300):  # connect and say nothing
                connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection.connect(str(gateway.socket_path))  # blocking: waits for room in the backlog
                connection.settimeout(30)  # a guard only
                idle.append(connection)
                most_python = max(most_python, threading.active_count())
                most_os = max(most_os, _os_threads())
            # +1: the gateway's accepting thread
            assert most_python <= python_before + 1 + MAX_CONNECTIONS + margin
            assert most_os <= os_before + 1 + MAX_CONNECTIONS + margin
            # every connection is answered, still open on our side: turned away at once, or
            # admitted and dropped when no request came in time
            replies = Counter(json.loads(connection.recv(4096))["error"] for connection in idle)
            _wait_for(lambda: threading.active_count() <= python_before + 1)
            assert client.call("echo")["output"] == "x"
        finally:
            for connection in idle:
                connection.close()
        log = gateway.drain()
    turned_away = f"more than {MAX_CONNECTIONS} connections to the gateway at once; make calls one after another"
    held = {  # what an admitted connection that never sends a request is told
        "no request arrived within 1 s",
        f"more than {MAX_CONCURRENT_CALLS} tool calls at once; make them one after another",
    }
    assert turned_away in replies and set(replies) <= {turned_away, *held}
    refused = sum(record.get("refused_connections", 0) for record in log)
    assert refused == replies[turned_away]
    assert Counter(record["error"] for record in log[:-1] if "refused_connections" not in record) == {
        error: count for error, count in replies.items() if error != turned_away
    }
    assert len(log) == 300 - refused + 2  # the refusals are counted in one record, not one record each
    assert log[-1]["tool"] == "echo" and log[-1]["ok"]


def test_a_request_trickled_byte_by_byte_is_cut_off_at_the_deadline():
    with ToolGateway([GatewayTool("echo", lambda args: {"output": "x"})], request_timeout_s=0.5) as gateway:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(str(gateway.socket_path))
        request = json.dumps({"tool": "echo", "args": {"text": "y" * 400}}).encode() + b"\n"
        try:
            for byte in request:  # each byte well within the deadline, the whole far past it
                connection.sendall(bytes([byte]))
                time.sleep(0.05)
                if select.select([connection], [], [], 0)[0]:
                    break  # the gateway has answered
        except OSError:
            pass  # it closed the connection: its answer is waiting
        connection.settimeout(30)  # a guard only
        try:
            reply = connection.recv(4096)
        finally:
            connection.close()
        assert b"no request arrived within 0.5 s" in reply
        assert [record["tool"] for record in gateway.drain()] == [None]
