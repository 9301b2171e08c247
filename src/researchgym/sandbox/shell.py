"""A persistent bash driven over pipes, so that `cd` and `export` survive between steps.

Protocol: each command is sent as one `eval $'...'` line (ANSI-C quoted, so no quote or
heredoc in the command can swallow what follows), with stdin from /dev/null so no program can
read the protocol. After it the shell prints a marker, its background jobs and the exit status
and working directory. Job control (`set -m`) puts every command in its own process group,
which is what a timeout kills; the shell itself and earlier background jobs survive.
"""

from __future__ import annotations

import os
import secrets
import select
import subprocess
import threading
import time
from collections.abc import Callable

from researchgym.errors import SandboxError
from researchgym.sandbox import procs
from researchgym.sandbox.base import ExecResult

# Bytes that cannot appear literally inside $'...' are written as \xHH.
_ESCAPES = {b: f"\\x{b:02x}" for b in range(256) if b < 32 or b >= 127}
_ESCAPES.update({ord("\\"): "\\\\", ord("'"): "\\'"})
_QUOTE_TABLE = str.maketrans({chr(b): text for b, text in _ESCAPES.items()})

_READ_CHUNK = 1 << 16
_KILL_GRACE_S = 2.0
_INTERRUPT_POLL_S = 0.25  # how soon a stop requested from another thread is seen


def ansi_c_quote(command: str) -> str:
    """Quote `command` as a bash $'...' word that evaluates back to the same bytes."""
    raw = command.encode("utf-8", "surrogateescape").decode("latin-1")
    return "$'" + raw.translate(_QUOTE_TABLE) + "'"


class _Capture:
    """Keeps the head and the tail of a stream and counts the bytes cut between them."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.buf = bytearray()
        self.head = b""
        self.cut = 0

    def add(self, chunk: bytes) -> None:
        self.buf += chunk
        # Generous slack so that the end-of-command marker is never cut.
        if len(self.buf) > 2 * self.keep + 2 * _READ_CHUNK:
            if not self.head:
                self.head = bytes(self.buf[: self.keep])
                del self.buf[: self.keep]
            excess = len(self.buf) - (self.keep + _READ_CHUNK)
            if excess > 0:
                del self.buf[:excess]
                self.cut += excess

    def render(self, body: bytes) -> tuple[str, int]:
        """Decode head + body, cutting the middle if the whole is over the cap."""
        head = self.head
        if not head:
            if len(body) <= 2 * self.keep:
                return body.decode("utf-8", "replace"), 0
            head, body = body[: self.keep], body[self.keep :]
        extra = max(len(body) - self.keep, 0)
        cut = self.cut + extra
        text = (
            head.decode("utf-8", "replace")
            + f"\n[... {cut:,} bytes of output cut; showing the first and last {self.keep:,} ...]\n"
            + body[extra:].decode("utf-8", "replace")
        )
        return text, cut


class PersistentShell:
    """One bash process (possibly wrapped in a sandbox launcher) and its pipe protocol."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        workdir: str,
        cwd: str | None = None,
        preexec: Callable[[], None] | None = None,
        max_output_chars: int = 20_000,
        on_runaway: Callable[[], int | None] | None = None,
        on_start: Callable[[], None] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self.argv, self.env, self.workdir, self.cwd_host = argv, env, workdir, cwd
        self.preexec = preexec
        self.pass_fds = pass_fds
        self.max_output_chars = max_output_chars
        #: Called after each command; returns a number of killed processes if the sandbox hit
        #: its process limit (a fork bomb) and had to be cleaned, else None.
        self.on_runaway = on_runaway
        self.on_start = on_start
        self.proc: subprocess.Popen[bytes] | None = None
        self.shell_pid: int | None = None
        self.cwd = workdir
        self._jobs: set[int] = set()
        self._syntax_error = False
        self._eof = False
        self._marker = f"__RG_{secrets.token_hex(8)}__"
        #: Set from another thread (the workspace quota watch) to stop the running command as
        #: a timeout would, shell restart included when a builtin loop ignores the kill.
        self._interrupt = threading.Event()

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self.on_start is not None:
            self.on_start()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd_host,
                preexec_fn=self.preexec,
                start_new_session=True,
                bufsize=0,
                pass_fds=self.pass_fds,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SandboxError(f"could not start the shell ({self.argv[0]}): {exc}") from exc
        self._jobs = set()
        self._eof = False
        self.cwd = self.workdir
        init = f"__rg_syn=0; set -m; set +o histexpand; cd {ansi_c_quote(self.workdir)} 2>/dev/null; printf '%s\\n' $$"
        result = self._roundtrip(init, timeout_s=30.0, recover=False)
        if result.exit_code is None or result.timed_out:
            detail = result.output.strip() or "no output"
            self.close()
            raise SandboxError(f"the sandbox shell did not start: {detail}")
        inner_pid = int(result.output.strip().splitlines()[-1])
        self.shell_pid = procs.find_host_pid(self.proc.pid, inner_pid) or self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def close(self, scan: bool = True) -> None:
        """Kill the shell and what it started. `scan=False` when the caller kills the rest another
        way (a cgroup): scanning /proc is the costly part of closing when many sandboxes run."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            if scan:
                procs.kill_below(proc.pid, keep=set(), rounds=5)
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - a kill that did not take
            pass
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    # ------------------------------------------------------------------ commands
    def run(self, command: str, timeout_s: float) -> ExecResult:
        notes: list[str] = []
        if not self.alive:
            self._restart(notes, "the shell had exited; a new one was started in the workspace")
        # Parse first (as a function body, which runs nothing): a syntax error is reported
        # and the command is not run at all, instead of running up to the error.
        check = ansi_c_quote(f"__rg_syntax() {{\n:\n{command}\n}}")
        wrapped = (
            f"if eval {check}; then unset -f __rg_syntax; __rg_syn=0; eval {ansi_c_quote(command)} < /dev/null; "
            "else __rg_syn=1; false; fi"
        )
        self._interrupt.clear()
        result = self._roundtrip(wrapped, timeout_s)
        if self._syntax_error:
            result.exit_code = 2  # bash's status for a syntax error
            result.notes.append("the command has a shell syntax error, so none of it was run")
        result.notes[:0] = notes
        if result.timed_out and not any("timed out" in note for note in result.notes):
            result.notes.append(f"command timed out after {timeout_s:g}s and was killed")
        if self.on_runaway is not None:
            killed = self.on_runaway()
            if killed is not None:
                self._jobs.clear()
                result.notes.append(f"the sandbox reached its process limit; {killed} processes were killed")
        if self._eof or not self.alive:
            self._restart(
                result.notes,
                "the shell exited; a new one was started in the workspace "
                "(working directory and exported variables were reset)",
            )
            result.cwd = self.cwd
        return result

    def _restart(self, notes: list[str], why: str) -> None:
        self.close()
        self.start()
        notes.append(why)

    def _roundtrip(self, line: str, timeout_s: float, recover: bool = True) -> ExecResult:
        """Send one line and read up to the end marker. A command that outlives its kill
        restarts the shell when `recover` (not while starting it: that would recurse)."""
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        marker = self._marker
        script = (
            f"{line}\n__rg_ec=$?; printf '\\n{marker}J\\n'; jobs -p; "
            f'printf \'{marker}E %d %d %s\\n\' "$__rg_ec" "${{__rg_syn:-0}}" "$PWD"\n'
        )
        started = time.perf_counter()
        try:
            self.proc.stdin.write(script.encode("utf-8", "surrogateescape"))
        except (BrokenPipeError, OSError):
            return ExecResult("", None, 0.0)
        capture = _Capture(keep=max(self.max_output_chars // 2, 100))
        end_token = f"{marker}E ".encode()
        fd = self.proc.stdout.fileno()
        deadline = started + timeout_s
        timed_out = False
        while True:
            now = time.perf_counter()
            if self._interrupt.is_set() and not timed_out:
                deadline = now
            if now >= deadline:
                if timed_out:
                    if not recover:
                        output, cut = capture.render(bytes(capture.buf))
                        return ExecResult(output, None, time.perf_counter() - started, True, cut)
                    return self._abandon(capture, started, timeout_s)
                timed_out = True
                self._kill_command()
                # a stopped command (quota) gets no grace: a builtin loop would go on writing
                deadline = time.perf_counter() + (_INTERRUPT_POLL_S if self._interrupt.is_set() else _KILL_GRACE_S)
                continue
            ready, _, _ = select.select([fd], [], [], min(deadline - now, _INTERRUPT_POLL_S))
            if not ready:
                continue
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:  # the shell died
                self._eof = True
                output, cut = capture.render(bytes(capture.buf))
                return ExecResult(output, None, time.perf_counter() - started, timed_out, cut)
            capture.add(chunk)
            buf = capture.buf
            found = buf.find(end_token, max(0, len(buf) - len(chunk) - len(end_token)))
            if found >= 0 and buf.find(b"\n", found) >= 0:
                break
        elapsed = time.perf_counter() - started
        output_bytes = bytes(capture.buf)
        jobs_at = output_bytes.rfind(f"\n{marker}J\n".encode(), 0, found)
        status = output_bytes[found + len(end_token) :].decode("utf-8", "replace").rstrip("\n")
        code_text, _, rest = status.partition(" ")
        syntax_text, _, cwd = rest.partition(" ")
        self._syntax_error = syntax_text == "1"
        jobs_text = output_bytes[jobs_at + len(marker) + 3 : found] if jobs_at >= 0 else b""
        self._jobs = {int(x) for x in jobs_text.split() if x.isdigit()}
        self.cwd = cwd or self.cwd
        output, cut = capture.render(output_bytes[:jobs_at] if jobs_at >= 0 else output_bytes[:found])
        result = ExecResult(
            output,
            int(code_text) if code_text.lstrip("-").isdigit() else None,
            elapsed,
            timed_out=timed_out,
            cut_bytes=cut,
            cwd=self.cwd,
        )
        if timed_out:
            result.notes.append(
                "command was stopped"
                if self._interrupt.is_set()
                else f"command timed out after {timeout_s:g}s and was killed"
            )
        if cut:
            result.notes.append(f"output was {cut:,} bytes too long; the middle was cut")
        return result

    def _abandon(self, capture: _Capture, started: float, timeout_s: float) -> ExecResult:
        """The command survived its kill (e.g. a shell-builtin loop): restart the shell."""
        output, cut = capture.render(bytes(capture.buf))
        elapsed = time.perf_counter() - started
        why = "was stopped" if self._interrupt.is_set() else f"timed out after {timeout_s:g}s and was killed"
        self._interrupt.clear()  # the new shell's start-up must not be stopped too
        self.close()
        self.start()
        result = ExecResult(output, None, elapsed, timed_out=True, cut_bytes=cut, cwd=self.cwd)
        result.notes.append(
            f"command {why}; the shell had to be restarted (working directory and exported variables were reset)"
        )
        return result

    def _shell_chain(self) -> set[int]:
        """Host pids to spare: the launcher, the shell, and everything between (bwrap's init)."""
        assert self.proc is not None and self.shell_pid is not None
        keep = {self.shell_pid, self.proc.pid}
        pid = self.shell_pid
        while pid and pid != self.proc.pid:
            stat = procs.read_stat(pid)
            if stat is None:
                break
            pid = stat[0]
            keep.add(pid)
        return keep

    def interrupt(self) -> None:
        """Stop the running command from another thread, as its timeout would."""
        self._interrupt.set()

    def _kill_command(self) -> None:
        """Kill every process group started by the running command; keep the shell and old jobs.

        Groups led by a spared process (the shell's own) are never signalled as a group.
        """
        if self.proc is None or self.shell_pid is None:
            return
        procs.kill_below(self.proc.pid, keep=self._shell_chain(), keep_ns_pgids=set(self._jobs))

    def kill_everything_but_shell(self) -> int:
        """Used after a fork bomb: kill all sandbox processes except the shell itself."""
        if self.proc is None or self.shell_pid is None:
            return 0
        self._jobs.clear()
        return procs.kill_below(self.proc.pid, keep=self._shell_chain())
