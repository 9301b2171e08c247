"""What both built-in providers share: limits, the persistent shell, fork-bomb clean-up."""

from __future__ import annotations

import importlib.util
import os
import warnings
from pathlib import Path

from researchgym.sandbox import procs
from researchgym.sandbox.base import ExecResult, SandboxSpec
from researchgym.sandbox.cgroups import SandboxCgroup
from researchgym.sandbox.exectrace import tracer_argv
from researchgym.sandbox.limits import launch_prefix, runaway_check
from researchgym.sandbox.quota import QuotaWatch, quota_areas
from researchgym.sandbox.shell import PersistentShell

#: The agent-computer interface commands shipped with the package, and their library.
PACKAGE_TOOLS = Path(__file__).resolve().parent.parent / "tools" / "bin"
PACKAGE_TOOLS_LIB = Path(__file__).resolve().parent.parent / "tools" / "lib"


def precompile_tools() -> None:
    """Write the tools library's bytecode next to it (the sandbox mounts it read-only and would
    otherwise recompile it on every command, ~5 ms each). Best effort: a read-only install
    already has its bytecode from pip."""
    import py_compile

    for source in PACKAGE_TOOLS_LIB.glob("*.py"):
        cached = Path(importlib.util.cache_from_source(str(source)))
        try:
            if not cached.exists() or cached.stat().st_mtime < source.stat().st_mtime:
                py_compile.compile(str(source), cfile=str(cached), doraise=True)
        except (OSError, py_compile.PyCompileError):
            pass


class ShellSandbox:
    """Base for providers that run one persistent bash under a launcher command."""

    name = "shell"
    workspace_path: str

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.cgroup: SandboxCgroup | None = None
        self.shell: PersistentShell | None = None
        self._quota: QuotaWatch | None = None  # started with the first command
        self._quota_areas = quota_areas(spec)  # every host folder the sandbox can write

    # Subclasses say how bash is launched and with which environment.
    def launcher(self) -> tuple[list[str], dict[str, str], str | None]:
        raise NotImplementedError

    def start(self) -> None:
        precompile_tools()
        limits = self.spec.limits
        self.cgroup = SandboxCgroup.create(limits.memory_mb, limits.max_processes, limits.cpus)
        if limits.max_processes and os.geteuid() == 0 and (self.cgroup is None or "pids" not in self.cgroup.applied):
            warnings.warn(
                "no writable pids cgroup here, and RLIMIT_NPROC does not bind root: the sandbox's "
                "process limit cannot be enforced (run as a normal user, or give root a cgroup)",
                RuntimeWarning,
                stacklevel=2,
            )
        if self.spec.devices and limits.memory_mb and (self.cgroup is None or "memory" not in self.cgroup.applied):
            # The fallback for a missing memory cgroup is an address-space limit, which CUDA
            # cannot live with (it reserves far more address space than it uses).
            warnings.warn(
                f"no writable memory cgroup here: the {limits.memory_mb} MiB memory limit is not enforced "
                "for this GPU sandbox (an address-space limit would break CUDA)",
                RuntimeWarning,
                stacklevel=2,
            )
            limits = limits.model_copy(update={"memory_mb": None})
        argv, env, host_cwd = self.launcher()
        prefix, preexec = launch_prefix(limits, self.cgroup)
        argv = prefix + argv
        if self.spec.exec_trace is not None:
            # outermost: the sandbox's limits (a file size limit, say) must not stop the tracer
            argv = tracer_argv(self.spec.exec_trace) + argv
        at_limit = runaway_check(self.cgroup)

        def on_start() -> None:
            if self.cgroup is not None:
                self.cgroup.touch()

        def on_runaway() -> int | None:
            if not at_limit() or self.shell is None:
                return None
            killed = self.shell.kill_everything_but_shell()
            at_limit()  # forks refused during the clean-up do not count again
            return killed

        self.shell = PersistentShell(
            argv,
            env=env,
            workdir=self.workspace_path,
            cwd=host_cwd,
            preexec=preexec,
            max_output_chars=limits.max_output_chars,
            on_runaway=on_runaway,
            on_start=on_start,
            pass_fds=self.spec.pass_fds,
        )
        try:
            self.shell.start()
        except Exception:
            self.close()
            raise

    def run(self, command: str, timeout_s: float | None = None) -> ExecResult:
        if self.shell is None:
            self.start()
        assert self.shell is not None and self.shell.on_runaway is not None
        # A fork bomb left by an earlier command is cleaned up before this one needs to fork.
        cleaned = self.shell.on_runaway()
        ooms = self.cgroup.oom_kills() if self.cgroup else 0
        limits = self.spec.limits
        if self._quota is None and self._quota_areas:
            self._quota = QuotaWatch(self._quota_areas, stop=self._quota_stop, kill=self._quota_kill)
        if self._quota is not None:
            with self._quota.watching() as watch:
                result = self.shell.run(command, timeout_s or limits.command_timeout_s)
            result.notes[:0] = watch.earlier_notes  # why a background job, or the shell, died meanwhile
            result.notes.extend(watch.command_notes)
        else:
            result = self.shell.run(command, timeout_s or limits.command_timeout_s)
        if cleaned is not None:
            result.notes.insert(0, f"the sandbox was at its process limit; {cleaned} leftover processes were killed")
        if self.cgroup is not None and self.cgroup.oom_kills() > ooms:
            result.notes.append(
                f"a process was killed because the sandbox ran out of memory (limit {self.spec.limits.memory_mb} MiB)"
            )
        return result

    def interrupt(self) -> None:
        """Stop the running command from another thread, as a timeout would; the shell stays."""
        if self.shell is not None:
            self.shell.interrupt()

    def _quota_stop(self) -> None:
        """The quota watch's way to stop the running command (from its thread), as a timeout would."""
        if self.shell is not None:
            self.shell.interrupt()

    def _quota_kill(self, shell_too: bool) -> None:
        """The quota watch's way to stop every writer: all the sandbox's processes but its shell,
        or the shell too (the next command then starts a new one). Called while no command runs."""
        shell = self.shell
        if shell is None:
            return
        if not shell_too:
            shell.kill_everything_but_shell()
            return
        proc = shell.proc
        if proc is not None and proc.poll() is None:
            procs.kill_below(proc.pid, keep=set())
            proc.kill()

    @property
    def cwd(self) -> str:
        return self.shell.cwd if self.shell else self.workspace_path

    def close(self) -> None:
        """Stop the shell and every process the sandbox started, detached ones included
        (they are found through the cgroup when there is one)."""
        if self._quota is not None:
            self._quota.close()
            self._quota = None
        if self.shell is not None:
            self.shell.close(scan=self.cgroup is None)  # a cgroup finds every process without a scan
            self.shell = None
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None

    def __enter__(self) -> ShellSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
