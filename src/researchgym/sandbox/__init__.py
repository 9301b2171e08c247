"""Sandbox providers, looked up by name (`bwrap`, `local`, entry points, or `module:Object`)."""

from __future__ import annotations

from researchgym.plugins import Registry
from researchgym.sandbox.base import AGENT_WORKSPACE, ExecResult, Limits, Mount, Sandbox, SandboxSpec

SANDBOXES: Registry = Registry("sandbox", entry_point_group="researchgym.sandboxes")
SANDBOXES.add("bwrap", "researchgym.sandbox.bwrap:BwrapSandbox")
SANDBOXES.add("local", "researchgym.sandbox.local:LocalSandbox")


def create_sandbox(name: str, spec: SandboxSpec) -> Sandbox:
    """Build (not start) a sandbox of the named provider."""
    return SANDBOXES.get(name)(spec)


__all__ = ["AGENT_WORKSPACE", "ExecResult", "Limits", "Mount", "Sandbox", "SandboxSpec", "SANDBOXES", "create_sandbox"]
