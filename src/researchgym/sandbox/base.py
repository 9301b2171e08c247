"""The sandbox seam: what every provider offers, and the limits it enforces."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

#: Where the agent's workspace appears inside an isolating sandbox (MLGym's convention).
AGENT_HOME = "/home/agent"
AGENT_WORKSPACE = "/home/agent/workspace"
#: Where the agent-computer interface commands are mounted inside a sandbox.
TOOLS_DIR = "/opt/researchgym/bin"
TOOLS_LIB_DIR = "/opt/researchgym/lib"
#: Where the tools keep per-episode state (open file, window) inside an isolating sandbox.
STATE_DIR = "/run/researchgym"
#: Where the host tool gateway's folder (holding its Unix socket) appears in a sandbox.
GATEWAY_DIR = "/run/researchgym-gateway"
GATEWAY_SOCKET = "gateway.sock"


class Limits(BaseModel):
    """Resource limits for one sandbox. `None` means "not limited"."""

    model_config = ConfigDict(extra="forbid")

    memory_mb: int | None = Field(
        4096, gt=0, description="memory for the whole sandbox (cgroup) or per process (RLIMIT_AS)"
    )
    cpus: float | None = Field(None, gt=0, description="CPU cores (cgroup quota, else CPU affinity)")
    max_processes: int | None = Field(256, gt=8, description="processes and threads at once")
    max_file_size_mb: int | None = Field(4096, gt=0, description="largest file a command may write")
    max_open_files: int | None = Field(4096, gt=16, description="file descriptors per process (RLIMIT_NOFILE)")
    max_workspace_mb: int | None = Field(
        20_000, gt=0, description="disk the workspace may use (watched during commands)"
    )
    max_workspace_files: int | None = Field(500_000, gt=0, description="files and folders the workspace may hold")
    cpu_seconds: int | None = Field(None, gt=0, description="CPU seconds per process")
    command_timeout_s: float = Field(25.0, gt=0, description="wall clock per command unless the caller gives one")
    max_output_chars: int = Field(20_000, ge=200, description="observation cap; head and tail are kept")


@dataclass(frozen=True)
class Mount:
    """A host path made visible inside the sandbox at `target`."""

    source: Path
    target: str
    read_only: bool = True


@dataclass
class SandboxSpec:
    """Everything a provider needs to build one sandbox."""

    workspace: Path
    mounts: list[Mount] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    network: bool = False
    #: A host folder for the tools' state, shared with the host (which reads it for the footer).
    state_dir: Path | None = None
    #: Host device files to pass through (a GPU task's /dev/nvidia*); the local sandbox sees all.
    devices: list[Path] = field(default_factory=list)
    #: The host tool gateway's folder (its socket is `gateway.sock`), bound read-only; commands
    #: find the socket through $RESEARCHGYM_GATEWAY.
    gateway_dir: Path | None = None
    #: Host file descriptors the sandbox's shell (and its commands) inherit under the same
    #: numbers: the pipes that join an evaluator to the agent's code it scores.
    pass_fds: tuple[int, ...] = ()
    #: A host file where every program started in the sandbox is logged by strace, started on
    #: the host around the launcher (exectrace.py): for a judge that must know, beyond what
    #: the sandbox's own code can forge, which program each process runs.
    exec_trace: Path | None = None


@dataclass
class ExecResult:
    """What one command did. `output` is stdout and stderr interleaved, already capped."""

    output: str
    exit_code: int | None
    duration_s: float
    timed_out: bool = False
    cut_bytes: int = 0
    cwd: str = ""
    notes: list[str] = field(default_factory=list)

    def observation(self) -> str:
        """The output followed by any notes the agent must see (timeouts, restarts, cuts)."""
        parts = [self.output] if self.output else []
        parts.extend(f"[researchgym] {note}" for note in self.notes)
        return "\n".join(parts)


@runtime_checkable
class Sandbox(Protocol):
    """A place to run shell commands with a persistent shell and a workspace."""

    name: str
    #: The workspace path as commands inside the sandbox see it.
    workspace_path: str

    def start(self) -> None: ...

    def run(self, command: str, timeout_s: float | None = None) -> ExecResult: ...

    def close(self) -> None: ...


@runtime_checkable
class Interruptible(Protocol):
    """A sandbox whose running command another thread can stop (a run's Ctrl-C). Optional:
    a provider without it finishes the command first."""

    def interrupt(self) -> None: ...
