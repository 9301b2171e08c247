"""A raw HTTP GET for the viewer tests: the path goes out exactly as written, so traversal
attempts reach the server unnormalised."""

from __future__ import annotations

import http.client

from researchgym.viewer import ViewerServer


def get(server: ViewerServer, path: str) -> tuple[int, bytes]:
    """A raw GET: the path goes out exactly as written (no client-side normalisation)."""
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    connection.putrequest("GET", path, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body
