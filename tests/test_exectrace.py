"""The exec tracer: real strace runs where we can, hand-written logs for the rare interleavings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from researchgym.errors import SandboxError
from researchgym.sandbox.exectrace import ExecTrace, ExecTraceError, Image, strace_path, tracer_argv

needs_strace = pytest.mark.skipif(strace_path() is None, reason="strace is not installed")

PY = sys.executable
# Traced programs report "LABEL PID TIME" so a test can ask the trace what that pid ran then.
REPORT = "import os, sys, time\ndef report(label): print(label, os.getpid(), repr(time.time()), flush=True)\n"


Reports = dict[str, tuple[int, float]]


def traced(tmp_path: Path, argv: Sequence[str | bytes], env: dict[str, str] | None = None) -> tuple[ExecTrace, Reports]:
    """Run `argv` under the tracer; the trace, and what the traced programs reported."""
    log = tmp_path / "trace.log"
    proc = subprocess.run([*tracer_argv(log), *argv], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    reports: Reports = {}
    for line in proc.stdout.splitlines():
        label, pid, t = line.split()
        reports[label] = (int(pid), float(t))
    return ExecTrace.read(log), reports


def image(trace: ExecTrace, report: tuple[int, float]) -> Image:
    found = trace.image_at(*report)
    assert found is not None, report
    return found


# ---------------------------------------------------------------- real strace runs


@needs_strace
def test_bash_running_a_script(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(REPORT + "report('script')\n")
    trace, reports = traced(tmp_path, ["bash", "-c", f"'{PY}' '{script}' --x 1; true"])
    pid, t = reports["script"]
    found = image(trace, reports["script"])
    assert found.path == PY
    assert found.argv == (PY, str(script), "--x", "1")
    assert not found.truncated
    assert trace.image_at(pid, 0.0) is None  # nothing is known before the trace began
    assert pid in trace.pids()
    # the bash that forked it is known too, and is bash
    root = [p for p in trace.pids() if p != pid and (i := trace.image_at(p, t)) and i.argv[:1] == ("bash",)]
    assert root


@needs_strace
def test_forked_child_runs_the_parents_image(tmp_path: Path) -> None:
    code = REPORT + "pid = os.fork()\nif pid == 0:\n    report('child'); os._exit(0)\n"
    code += "os.waitpid(pid, 0); report('parent')\n"
    trace, reports = traced(tmp_path, [PY, "-c", code, "arg"])
    child, parent = reports["child"], reports["parent"]
    assert child[0] != parent[0]
    assert image(trace, child) == image(trace, parent)
    assert image(trace, child).argv == (PY, "-c", code, "arg")


@needs_strace
def test_fork_from_a_thread_inherits_the_process_image(tmp_path: Path) -> None:
    code = REPORT + (
        "import threading\n"
        "def work():\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        report('child'); os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "thread = threading.Thread(target=work); thread.start(); thread.join(); report('parent')\n"
    )
    trace, reports = traced(tmp_path, [PY, "-c", code])
    assert image(trace, reports["child"]) == image(trace, reports["parent"])


@needs_strace
def test_subprocess_vfork_and_exec(tmp_path: Path) -> None:
    echo = shutil.which("echo") or "/bin/echo"
    code = REPORT + (
        "import subprocess, time\n"
        f"proc = subprocess.Popen([{echo!r}, 'hi'], stdout=subprocess.DEVNULL); proc.wait()\n"
        "print('echo', proc.pid, repr(time.time()), flush=True); report('parent')\n"
    )
    trace, reports = traced(tmp_path, [PY, "-c", code])
    assert "vfork(" in (tmp_path / "trace.log").read_text()  # posix_spawn-style, as CPython does
    assert image(trace, reports["echo"]).argv == (echo, "hi")
    assert image(trace, reports["echo"]).path == echo
    assert image(trace, reports["parent"]).path == PY


@needs_strace
def test_failed_exec_changes_nothing(tmp_path: Path) -> None:
    code = REPORT + (
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try:\n"
        "        os.execv('/nonexistent/prog', ['prog'])\n"
        "    except OSError:\n"
        "        report('child'); os._exit(0)\n"
        "os.waitpid(pid, 0); report('parent')\n"
    )
    trace, reports = traced(tmp_path, [PY, "-c", code])
    assert image(trace, reports["child"]) == image(trace, reports["parent"])


@needs_strace
def test_command_not_found_leaves_the_shell_image(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    # bash looks a bare name up itself; a path it hands to execve, which fails
    argv = [*tracer_argv(log), "bash", "-c", "no_such_program_xyz; /no/such/program_xyz; exit 0"]
    subprocess.run(argv, capture_output=True, timeout=60, check=True)
    assert 'execve("/no/such/program_xyz"' in log.read_text()
    assert "ENOENT" in log.read_text()
    trace = ExecTrace.read(log)
    images = [trace.image_at(pid, 1e12) for pid in trace.pids()]
    assert len(images) == 3  # bash and the two children it forked to run the missing programs
    assert all(found is not None and found.argv[0] == "bash" for found in images)


@needs_strace
def test_environment_of_an_exec(tmp_path: Path) -> None:
    env = shutil.which("env") or "/usr/bin/env"
    trace, reports = traced(tmp_path, [env, "FOO=bar", PY, "-c", REPORT + "report('py')"])
    found = image(trace, reports["py"])
    assert found.path == PY
    assert found.getenv("FOO") == "bar"
    assert found.getenv("PATH") == os.environ["PATH"]
    assert found.getenv("NO_SUCH_VARIABLE_XYZ") is None


@needs_strace
def test_awkward_strings_round_trip(tmp_path: Path) -> None:
    args = ['a"b\\c\nd é', "\x1b\x7f\t\v\f\r", "\x017", "", "日本 \\033"]
    weird = 'x="1"\\n\t\x01'
    trace, reports = traced(
        tmp_path,
        [PY, "-c", REPORT + "report('py')", *args, b"\xff\xfe"],
        env={**os.environ, "WEIRD": weird},
    )
    found = image(trace, reports["py"])
    assert found.argv[3:] == (*args, os.fsdecode(b"\xff\xfe"))
    assert found.getenv("WEIRD") == weird
    assert not found.truncated


@needs_strace
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_forks_inside_a_pid_namespace_are_linked_by_host_pid(tmp_path: Path) -> None:
    probe = subprocess.run(
        ["bwrap", "--unshare-pid", "--unshare-user", "--dev-bind", "/", "/", "true"], capture_output=True, timeout=30
    )
    if probe.returncode != 0:
        pytest.skip(f"bubblewrap cannot make namespaces here: {probe.stderr!r}")
    code = REPORT + "pid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0); report('ns')\n"
    argv = ["bwrap", "--unshare-pid", "--unshare-user", "--dev-bind", "/", "/", PY, "-c", code]
    trace, reports = traced(tmp_path, argv)
    ns_pid, t = reports["ns"]  # the pid inside the namespace, not the host's
    pythons = [pid for pid in trace.pids() if (found := trace.image_at(pid, t)) and found.path == PY]
    assert len(pythons) == 2  # the python and its forked child, both by host pid
    assert ns_pid not in pythons


# ---------------------------------------------------------------- hand-written logs

ENV = '["PATH=/bin", "HOME=/h"]'
PYTHON = f'execve("/usr/bin/python3", ["python3", "x.py"], {ENV}) = 0'
BASH = f'execve("/bin/bash", ["bash"], {ENV}) = 0'
FORK = "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f0) = {}"
THREAD = (
    "clone3({{flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|"
    "CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f1, parent_tid=0x7f1, exit_signal=0, "
    "stack=0x7f2, stack_size=0x7fff80, tls=0x7f3}} => {{parent_tid=[{0}]}}, 88) = {0}"
)


def log(*lines: str) -> ExecTrace:
    return ExecTrace.parse("\n".join(lines) + "\n")


def test_pid_reuse_is_answered_by_time() -> None:
    trace = log(
        f"50 1.000000 {PYTHON}",
        f"60 2.000000 {BASH}",
        f"60 5.000000 {FORK.format(50)}",
    )
    assert trace.image_at(50, 0.5) is None
    assert trace.image_at(50, 2.0).argv == ("python3", "x.py")  # type: ignore[union-attr]
    assert trace.image_at(50, 6.0).argv == ("bash",)  # type: ignore[union-attr]
    assert trace.image_at(60, 1.5) is None
    assert trace.pids() == {50, 60}


def test_fork_takes_the_parents_image_at_fork_time() -> None:
    trace = log(
        f"10 1.0 {BASH}",
        f"10 2.0 {FORK.format(11)}",
        f"10 3.0 {PYTHON}",
        "10 4.0 vfork() = 12",
        "10 5.0 fork() = 13",
    )
    assert trace.image_at(11, 9.0).path == "/bin/bash"  # type: ignore[union-attr]
    assert trace.image_at(12, 9.0).path == "/usr/bin/python3"  # type: ignore[union-attr]
    assert trace.image_at(13, 9.0).path == "/usr/bin/python3"  # type: ignore[union-attr]
    assert trace.image_at(11, 1.5) is None


def test_unfinished_and_resumed_calls() -> None:
    trace = log(
        f"10 1.0 {PYTHON}",
        "10 2.0 vfork( <unfinished ...>",
        f'11 2.5 execve("/bin/true", ["true"], {ENV} <unfinished ...>',
        "12 2.6 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD <unfinished ...>",
        f'13 2.7 execve("/bin/nope", ["nope"], {ENV} <unfinished ...>',
        "11 3.0 <... execve resumed>) = 0",
        "10 3.1 <... vfork resumed>) = 11",
        "13 3.2 <... execve resumed>) = -1 ENOENT (No such file or directory)",
        "12 3.3 <... clone resumed>, child_tidptr=0x7f0) = 14",
    )
    # the exec counts from its entry, the child from the vfork's entry
    assert trace.image_at(11, 2.2).path == "/usr/bin/python3"  # type: ignore[union-attr]
    assert trace.image_at(11, 2.5) == Image("/bin/true", ("true",), (("PATH", "/bin"), ("HOME", "/h")), False)
    assert trace.image_at(13, 9.0) is None  # a failed exec, and 13's origin is unknown
    assert trace.image_at(14, 9.0) is None  # 12's image is unknown
    assert 14 in trace.pids()


def test_failed_exec_keeps_the_previous_image() -> None:
    trace = log(
        f"10 1.0 {PYTHON}",
        f'10 2.0 execve("/x/true", ["true"], {ENV}) = -1 ENOENT (No such file or directory)',
        f'10 3.0 execve("/x/true", ["true"], {ENV}) = -1 EACCES (Permission denied)',
    )
    assert trace.image_at(10, 4.0).path == "/usr/bin/python3"  # type: ignore[union-attr]


def test_threads_are_not_processes() -> None:
    trace = log(
        f"10 1.0 {PYTHON}",
        f"10 2.0 {THREAD.format(11)}",
        f"11 3.0 {THREAD.format(12)}",
        "12 4.0 vfork() = 13",
        "10 5.0 clone(child_stack=0x7f, flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND) = 14",
    )
    python = trace.image_at(10, 1.0)
    assert python is not None
    # a thread's tid answers with its process's image, and what a thread forks inherits it
    assert trace.image_at(12, 4.5) == python
    assert trace.image_at(13, 4.5) == python
    assert trace.image_at(14, 5.5) == python


def test_exec_by_a_non_leader_thread() -> None:
    trace = log(
        f"10 1.0 {PYTHON}",
        f"10 2.0 {THREAD.format(11)}",
        f'11 3.0 execve("/bin/echo", ["echo", "hi"], {ENV} <pid changed to 10 ...>',
        "10 3.1 +++ superseded by execve in pid 11 +++",
        "10 3.2 <... execve resumed>) = ?",
    )
    assert trace.image_at(10, 2.5).path == "/usr/bin/python3"  # type: ignore[union-attr]
    assert trace.image_at(10, 3.5).argv == ("echo", "hi")  # type: ignore[union-attr]


def test_truncated_strings_and_arrays() -> None:
    trace = log(
        f'10 1.0 execve("/bin/a", ["a", "long"...], {ENV}) = 0',
        '11 1.0 execve("/bin/b", ["b", "c", ...], ["A=1"]) = 0',
        '12 1.0 execve("/bin/c", ["c"], 0x7ffd09600b18 /* 12 vars */) = 0',
        '13 1.0 execve("/bin/d", ["d"], ["X=1", "LD_PRELOAD=/ev"...]) = 0',
        '14 1.0 execve("/bin/e", NULL, NULL) = 0',
    )
    a, b, c, d, e = (trace.image_at(pid, 2.0) for pid in range(10, 15))
    assert a == Image("/bin/a", ("a", "long"), (("PATH", "/bin"), ("HOME", "/h")), True)
    assert b == Image("/bin/b", ("b", "c"), (("A", "1"),), True)
    assert c == Image("/bin/c", ("c",), (), True)
    assert d is not None and d.truncated and d.getenv("LD_PRELOAD") == "/ev"
    assert e == Image("/bin/e", (), (), False)


def test_escapes_are_decoded() -> None:
    trace = log(r'10 1.0 execve("/bin/x", ["q\"b\\s", "\n\t\r\v\f", "\33[0m\0331\177", "\x1b", "\303\251"], []) = 0')
    found = trace.image_at(10, 1.0)
    assert found is not None
    assert found.argv == ('q"b\\s', "\n\t\r\v\f", "\x1b[0m\x1b1\x7f", "\x1b", "é")


def test_strings_cannot_forge_structure() -> None:
    forged = r'"x\"]) = 0 <unfinished ...>", "y <pid changed to 1 ...>", "clone(flags=SIGCHLD) = 99"'
    trace = log(f'10 1.0 execve("/bin/x", [{forged}], []) = -1 ENOENT (No such file or directory)')
    assert trace.pids() == set()


def test_execveat() -> None:
    trace = log(
        f'10 1.0 execveat(AT_FDCWD, "/usr/bin/python3", ["python3"], {ENV}, 0) = 0',
        f'11 1.0 execveat(3, "", ["prog"], {ENV}, AT_EMPTY_PATH) = 0',
    )
    assert trace.image_at(10, 1.0).argv == ("python3",)  # type: ignore[union-attr]
    assert trace.image_at(11, 1.0).path == ""  # type: ignore[union-attr]


def test_garbage_is_ignored() -> None:
    trace = log(
        "",
        "strace: Process 123 attached",
        "not a line at all",
        f"10 1.0 {PYTHON}",
        "10 1.5 --- SIGCHLD {si_signo=SIGCHLD} ---",
        "10 1.6 +++ exited with 0 +++",
        "11 1.7 <... execve resumed>) = 0",
        '12 1.8 execve("/bin/x", ["unterminated',
        '13 1.9 execve("/bin/x", ["a" "b"], []) = 0',
        "14 2.0 clone(child_stack=NULL, flags=SIGCHLD) = ? <unavailable>",
        "15 2.0 clone(child_stack=NULL, flags=SIGCHLD) = -1 EAGAIN (Resource temporarily unavailable)",
        "16 abc execve()",
        "10 2.1 fork() = 17",
        '18 2.2 execve("/bin/x", ["x"], ["A=\\',
    )
    assert trace.pids() == {10, 17}
    assert trace.image_at(17, 3.0) == trace.image_at(10, 3.0)


def test_pid_namespace_translation() -> None:
    trace = log(
        f"10 1.0 {BASH}",
        "10 2.0 clone(child_stack=NULL, flags=CLONE_NEWNS|CLONE_NEWUSER|CLONE_NEWPID|SIGCHLD) = 11",
        f"11 3.0 {FORK.format(2)} /* 12 in strace's PID NS */",
        f"12 4.0 {PYTHON}",
        f"12 5.0 {FORK.format(3)} /* 13 in strace's PID NS */",
        f"12 6.0 {FORK.format(4)}",  # inside the namespace and untranslated: not trusted
    )
    assert trace.image_at(13, 5.5).path == "/usr/bin/python3"  # type: ignore[union-attr]
    assert trace.image_at(12, 3.5).path == "/bin/bash"  # type: ignore[union-attr]
    assert {2, 3, 4} & trace.pids() == set()


def test_read_of_a_missing_log_is_empty(tmp_path: Path) -> None:
    trace = ExecTrace.read(tmp_path / "absent.log")
    assert trace.pids() == set()
    assert trace.image_at(1, 1.0) is None


def test_tracer_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/opt/strace" if name == "strace" else None)
    argv = tracer_argv(tmp_path / "t.log")
    assert argv[0] == "/opt/strace" and argv[-1] == "--"
    assert argv[argv.index("-o") + 1] == str(tmp_path / "t.log")
    assert "trace=execve,execveat,fork,vfork,clone,clone3" in argv


def test_tracer_argv_without_strace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert strace_path() is None
    with pytest.raises(ExecTraceError, match=r"strace.*apt-get install strace") as raised:
        tracer_argv(tmp_path / "t.log")
    assert isinstance(raised.value, SandboxError)
