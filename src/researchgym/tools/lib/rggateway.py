"""Client of the host tool gateway (researchgym/tools/gateway.py), for commands in the sandbox.

Standard library only. `call(tool, **args)` sends one JSON line over the Unix socket named by
$RESEARCHGYM_GATEWAY and returns the reply's fields, or raises GatewayError with the reason.
"""

from __future__ import annotations

import json
import os
import socket

CALL_TIMEOUT_S = 120.0


class GatewayError(Exception):
    """The call did not succeed; the message says why, for the agent."""


def call(tool: str, **args) -> dict:
    path = os.environ.get("RESEARCHGYM_GATEWAY")
    if not path:
        raise GatewayError(
            f"{tool} needs the researchgym tool gateway, and this run did not start one: "
            "the run must enable the tool (memory or literature search) for it to work"
        )
    request = json.dumps({"tool": tool, "args": args}).encode() + b"\n"
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(CALL_TIMEOUT_S)
    try:
        connection.connect(path)
        try:
            connection.sendall(request)
            connection.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before we finished (too large): the reason is waiting to be read
        chunks = []
        while True:
            chunk = connection.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    except TimeoutError:
        raise GatewayError(f"{tool}: the gateway did not answer within {CALL_TIMEOUT_S:g} s") from None
    except OSError as exc:
        raise GatewayError(f"{tool}: cannot reach the tool gateway ({exc})") from None
    finally:
        connection.close()
    try:
        reply = json.loads(b"".join(chunks))
    except ValueError:
        raise GatewayError(f"{tool}: the gateway closed the connection without a reply") from None
    if not reply.get("ok"):
        raise GatewayError(f"{tool}: {reply.get('error', 'refused')}")
    return reply
