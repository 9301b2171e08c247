"""The CPU meter of the 3-SAT evaluation: runs heuristic_server.py and tells the evaluator how
much CPU time it used.

The task's Time is CPU time, not wall-clock time, so that a busy machine does not change a score.
The evaluator measures its own (the solver's) CPU time itself. The heuristic's runs in another
sandbox, where only something on that side can read it, and nothing the heuristic's code can
change may report it. So this meter, not the server, holds the evaluator's link:

* it takes the first frame from the evaluator (a key for signing its reports), then starts
  heuristic_server.py as its child, joined to it by pipes of its own; the heuristic's code is
  not given the link (it could reopen the copies the sandbox's shell holds, through /proc:
  hence the signature), and the key is read before any of its code exists;
* it is non-dumpable, so a same-user process cannot read its memory (the key) or open its
  descriptors, and a child subreaper, so every process the heuristic starts stays below it
  even when its parent exits (a double fork, setsid);
* it passes every frame through unchanged (tagged, see below), and when the evaluator asks,
  it reports the CPU time (user + system) used since the server said it is ready, signed with
  the key over the evaluator's fresh nonce: a report cannot be forged, replayed or sent early.

What is counted, from /proc and getrusage: every process of the sandbox but this meter (the
server and its threads, any process it or the heuristic starts, detached or not, running,
exited or reaped; the sandbox's shell, idle, too). That holds where the meter and its parents
are alone in their PID namespace when it starts, as in an evaluation's sandbox. Elsewhere (run
by hand, or in an unisolated `local` sandbox) only the meter's own descendants are counted.
CPU time spent before the server's first message (starting Python, importing heuristic.py) is
not counted. Times come from the kernel in clock ticks (10 ms per process and reading).

A process that exits moves its time into its parent's count when the parent waits for it, or
into this meter's when it is an orphan. The kernel drops the time of a child it reaps by itself,
which it does when the parent ignores SIGCHLD (SIG_IGN, or SA_NOCLDWAIT): the red team hid 7 s
of CPU in helpers that way. So the server starts with SIGCHLD at its default, and a seccomp
filter, inherited by everything it starts and never removable, refuses (EPERM) any change of
SIGCHLD's action (`confine`); looking the action up stays allowed. Where the filter cannot be
installed (an architecture other than x86-64 and AArch64), the meter does not start the server.

A process that exits during a reading moves its time into its parent's count. The reading that
starts the clock reads parents before children and this meter's reaped children first, so such
a process is missed rather than counted twice; the final reading reads children before parents
and the reaped children last, so it is counted twice rather than missed. Either way an error
can only charge the heuristic more.

Frames (agent_link's framing) from the evaluator start with a tag: "=" (pass the rest to the
server) or "?" (a request to this meter: {"key": hex}, first and once, then {"measure": nonce}).
Frames to the evaluator: "=" and the server's frame, or "!", a 32-byte HMAC-SHA256 of the rest
with the key, and {"nonce": nonce, "cpu_s": seconds, "counted": "sandbox" or "descendants"}.

    python cpu_meter.py [--descendants-only]
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import json
import os
import resource
import signal
import subprocess
import sys
import threading

from agent_link import AgentEnd

FORWARD, REQUEST, REPORT = b"=", b"?", b"!"
#: The largest frame passed on from the server (the evaluator accepts far less).
MAX_FRAME = 64 << 20
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 4, 36, 38, 22
SECCOMP_MODE_FILTER = 2
#: machine -> (its seccomp audit architecture, rt_sigaction's system call number).
SIGACTION_CALLS = {"x86_64": (0xC000003E, 13), "aarch64": (0xC00000B7, 134)}
X32_SYSCALL_BIT = 0x40000000
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


LIBC = ctypes.CDLL(None, use_errno=True)


def prctl(option: int, value: int) -> None:
    LIBC.prctl(option, value, 0, 0, 0)


def processes() -> dict[int, int]:
    """Every process this /proc shows: pid -> parent pid."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                parents[int(name)] = stat[0]
    return parents


def read_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks of the process, all its threads, and its reaped children), or
    None once it is gone. The name in parentheses may hold anything: fields follow the last ')'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2:].split()
    return int(fields[1]), sum(int(field) for field in fields[11:15])  # ppid; utime stime cutime cstime


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def sigchld_filter(machine: str) -> list[tuple[int, int, int, int]]:
    """A classic-BPF seccomp program: rt_sigaction(SIGCHLD, act, ...) with a non-NULL `act`
    fails with EPERM; every other call is allowed, but calls of another ABI (i386 or x32 on an
    x86-64 machine), which this program cannot read the same way, all fail."""
    arch, sigaction = SIGACTION_CALLS[machine]
    load, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_JMP|JGE|K, BPF_RET|K
    allow, refuse = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW; SECCOMP_RET_ERRNO | EPERM
    return [
        (load, 0, 0, 4),  # 0: seccomp_data.arch
        (jeq, 1, 0, arch),  # 1: this machine's own ABI -> 3
        (ret, 0, 0, refuse),  # 2
        (load, 0, 0, 0),  # 3: seccomp_data.nr
        (jge, 8, 0, X32_SYSCALL_BIT),  # 4: x32 -> refuse (13)
        (jeq, 0, 6, sigaction),  # 5: not rt_sigaction -> allow (12)
        (load, 0, 0, 16),  # 6: args[0], the signal
        (jeq, 0, 4, signal.SIGCHLD),  # 7: another signal -> allow (12)
        (load, 0, 0, 24),  # 8: args[1] (act), low half
        (jeq, 0, 3, 0),  # 9: non-NULL -> refuse (13)
        (load, 0, 0, 28),  # 10: args[1], high half
        (jeq, 0, 1, 0),  # 11: non-NULL -> refuse (13); NULL: a query -> allow
        (ret, 0, 0, allow),  # 12
        (ret, 0, 0, refuse),  # 13
    ]


def confine() -> None:
    """Run in the server's process before it execs (see the docstring): it dies with this meter,
    starts with SIGCHLD's default action, and can never make its children's CPU time vanish."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # an ignored SIGCHLD would survive the exec
    machine = os.uname().machine
    if machine not in SIGACTION_CALLS:
        raise OSError(f"cannot keep the heuristic's children's CPU time on {machine}: no seccomp filter for it")
    program = (SockFilter * 14)(*[SockFilter(*instruction) for instruction in sigchld_filter(machine)])
    fprog = SockFprog(len(program), program)
    if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or LIBC.prctl(
        PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0
    ) != 0:
        raise OSError(ctypes.get_errno(), "cannot install the seccomp filter that keeps SIGCHLD's action")


def reaped_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reap() -> None:
    """Collect this meter's exited children (orphans come here): their time moves to reaped_s()."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Meter:
    def __init__(self, descendants_only: bool) -> None:
        self.me = os.getpid()
        parents = processes()
        ancestors, pid = set(), parents.get(self.me, 0)
        while pid in parents and pid not in ancestors:
            ancestors.add(pid)
            pid = parents[pid]
        #: Alone in the PID namespace with its parents: then everything else that appears is
        #: the heuristic's doing, wherever in the tree it hides.
        self.whole_namespace = not descendants_only and set(parents) <= ancestors | {self.me}

    def _order(self, parents: dict[int, int], children_first: bool) -> list[int]:
        """The processes to read, parents before children or children before parents; those whose
        parent is already gone (now some ancestor's) first when children come first, else last."""
        children: dict[int, list[int]] = {}
        for pid, parent in parents.items():
            children.setdefault(parent, []).append(pid)
        if self.whole_namespace:
            roots = [pid for pid, parent in parents.items() if parent not in parents]
            orphans = [pid for pid in roots if pid != 1 and parents[pid] != 0]
            roots = [pid for pid in roots if pid not in orphans]
        else:
            roots, orphans = [self.me], []
        order: list[int] = []
        stack = [(pid, False) for pid in roots]
        seen = set()
        while stack:
            pid, expanded = stack.pop()
            if expanded:
                order.append(pid)
                continue
            if pid in seen:
                continue
            seen.add(pid)
            if not children_first:
                order.append(pid)
            else:
                stack.append((pid, True))
            stack.extend((child, False) for child in children.get(pid, ()))
        order = [pid for pid in order if pid != self.me]
        return orphans + order if children_first else order + orphans

    def cpu_s(self, final: bool) -> float:
        """CPU seconds of what is counted (see the docstring), never less than it used (final) or
        never more (the reading that starts the clock)."""
        reap()
        before = 0.0 if final else reaped_s()
        ticks = 0
        for pid in self._order(processes(), children_first=final):
            stat = read_stat(pid)
            if stat is not None:
                ticks += stat[1]
        return before + ticks * TICK_S + (reaped_s() if final else 0.0)


def read_exact(fd: int, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, min(size - len(data), 1 << 20))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Relay:
    def __init__(self, end: AgentEnd, key: bytes, meter: Meter) -> None:
        self.end, self.key, self.meter = end, key, meter
        self.lock = threading.Lock()
        self.started: float | None = None
        self.ready = threading.Event()
        self.server = subprocess.Popen(
            [sys.executable, "heuristic_server.py"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            preexec_fn=confine,
        )
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server_in, self.server_out = self.server.stdin.fileno(), self.server.stdout.fileno()

    def send(self, payload: bytes) -> None:
        with self.lock:
            self.end.send(payload)

    def from_evaluator(self) -> None:
        """Pass the evaluator's frames to the server; answer its requests."""
        try:
            while True:
                frame = self.end.receive()
                if frame is None:
                    break
                if frame[:1] == FORWARD:
                    write_all(self.server_in, len(frame[1:]).to_bytes(4, "big") + frame[1:])
                elif frame[:1] == REQUEST:
                    self.report(json.loads(frame[1:])["measure"])
                else:
                    print("cpu_meter: the evaluator sent a frame without a tag", file=sys.stderr)
                    break
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"cpu_meter: {exc}", file=sys.stderr)
        stop()

    def report(self, nonce: str) -> None:
        self.ready.wait()
        assert self.started is not None
        body = json.dumps({"nonce": nonce, "cpu_s": max(self.meter.cpu_s(final=True) - self.started, 0.0),
                           "counted": "sandbox" if self.meter.whole_namespace else "descendants"}).encode()
        self.send(REPORT + hmac.new(self.key, body, hashlib.sha256).digest() + body)

    def from_server(self) -> None:
        """Pass the server's frames to the evaluator; the first starts the clock."""
        while True:
            header = read_exact(self.server_out, 4)
            if header is None:
                break
            size = int.from_bytes(header, "big")
            if size > MAX_FRAME:
                print(f"cpu_meter: the heuristic's server sent a frame of {size:,} bytes", file=sys.stderr)
                break
            payload = read_exact(self.server_out, size)
            if payload is None:
                break
            if self.started is None:
                self.started = self.meter.cpu_s(final=False)
                self.ready.set()
            self.send(FORWARD + payload)
        stop()


def stop() -> None:
    """End the meter, and with it the link; the server dies with it (its parent-death signal),
    and whatever else is left, with the sandbox."""
    sys.stderr.flush()
    os._exit(0)


def main() -> None:
    prctl(PR_SET_DUMPABLE, 0)  # before the key arrives: no same-user process may read this memory
    prctl(PR_SET_CHILD_SUBREAPER, 1)
    meter = Meter(descendants_only="--descendants-only" in sys.argv[1:])
    end = AgentEnd.from_stdio()
    first = end.receive()
    if first is None or first[:1] != REQUEST:
        print("cpu_meter: the evaluator did not send its key first", file=sys.stderr)
        return
    key = bytes.fromhex(json.loads(first[1:])["key"])
    # Nothing is imported from this folder after the heuristic's code could write to it.
    sys.path[:] = [path for path in sys.path if path not in ("", os.path.dirname(os.path.abspath(__file__)))]
    relay = Relay(end, key, meter)
    threading.Thread(target=relay.from_evaluator, daemon=True, name="from-evaluator").start()
    try:
        relay.from_server()
    except OSError as exc:  # the evaluator is gone
        print(f"cpu_meter: {exc}", file=sys.stderr)
    stop()


if __name__ == "__main__":
    main()
