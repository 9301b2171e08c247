"""Sandbox providers, looked up by name (`bwrap`, `local`, entry points, or `module:Object`)."""

from __future__ import annotations

from pathlib import Path

from researchgym.plugins import Registry
from researchgym.sandbox.base import AGENT_WORKSPACE, ExecResult, Limits, Mount, Sandbox, SandboxSpec

SANDBOXES: Registry = Registry("sandbox", entry_point_group="researchgym.sandboxes")
SANDBOXES.add("bwrap", "researchgym.sandbox.bwrap:BwrapSandbox")
SANDBOXES.add("local", "researchgym.sandbox.local:LocalSandbox")


def create_sandbox(name: str, spec: SandboxSpec) -> Sandbox:
    """Build (not start) a sandbox of the named provider."""
    return SANDBOXES.get(name)(spec)


def sees_host_paths(name: str) -> bool:
    """Whether the provider's sandboxes see the host's files where they are (a class attribute
    `sees_host_paths`, true for `local`): then a host folder keeps its path inside and needs no
    mount. Isolating providers (bwrap, third-party ones by default) show mounts where asked."""
    return bool(getattr(SANDBOXES.get(name), "sees_host_paths", False))


def path_inside(name: str, host_path: Path, isolated: str) -> str:
    """Where a host folder, mounted at `isolated` in an isolating sandbox, is seen by commands in
    a sandbox of provider `name`: callers never branch on a provider's name."""
    return str(host_path) if sees_host_paths(name) else isolated


__all__ = [
    "AGENT_WORKSPACE",
    "ExecResult",
    "Limits",
    "Mount",
    "Sandbox",
    "SandboxSpec",
    "SANDBOXES",
    "create_sandbox",
    "path_inside",
    "sees_host_paths",
]
