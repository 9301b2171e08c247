"""The bubblewrap sandbox, exercised for real: isolation, limits, the persistent shell."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from researchgym.sandbox import Limits, Mount
from researchgym.sandbox.base import AGENT_WORKSPACE


def test_cd_and_export_persist_between_commands(make_sandbox):
    box = make_sandbox()
    assert box.run("mkdir -p sub/dir && cd sub/dir && export GREETING=hello").exit_code == 0
    result = box.run('pwd; echo "$GREETING"')
    assert result.output.splitlines() == [f"{AGENT_WORKSPACE}/sub/dir", "hello"]
    assert result.cwd == f"{AGENT_WORKSPACE}/sub/dir"


def test_runs_as_non_root_user_in_own_pid_namespace(make_sandbox):
    box = make_sandbox()
    assert box.run("id -u").output.strip() == "1000"
    assert box.run("whoami").output.strip() == "agent"
    pids = box.run("ls /proc | grep -E '^[0-9]+$' | wc -l").output.strip()
    assert int(pids) < 10  # only the sandbox's own processes are visible


def test_quotes_heredocs_unicode_and_exit_codes(make_sandbox):
    box = make_sandbox()
    command = "cat <<'EOF'\nit's \"quoted\" $HOME `x` \\ ünïcødé ✓\nEOF\nfalse"
    result = box.run(command)
    assert result.output == 'it\'s "quoted" $HOME `x` \\ ünïcødé ✓\n'
    assert result.exit_code == 1
    assert box.run("(exit 7)").exit_code == 7


def test_workspace_is_writable_and_visible_on_host(make_sandbox, workspace):
    box = make_sandbox()
    assert box.run("echo content > made-inside.txt").exit_code == 0
    assert (workspace / "made-inside.txt").read_text() == "content\n"


def test_data_folder_is_read_only(make_sandbox, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("a,b\n")
    box = make_sandbox(mounts=[Mount(data, f"{AGENT_WORKSPACE}/data", read_only=True)])
    assert box.run("cat data/train.csv").output == "a,b\n"
    write = box.run("echo x > data/new.csv")
    assert write.exit_code != 0 and "Read-only file system" in write.output
    assert box.run("rm data/train.csv").exit_code != 0
    assert (data / "train.csv").exists() and not (data / "new.csv").exists()


def test_hidden_file_host_path_is_not_readable(make_sandbox, tmp_path):
    secret = tmp_path / "task" / "eval" / "labels.csv"
    secret.parent.mkdir(parents=True)
    secret.write_text("SECRET\n")
    box = make_sandbox(hidden=[secret])
    result = box.run(f"cat {secret}")
    assert result.exit_code != 0 and "SECRET" not in result.output


def test_hidden_file_inside_a_bound_folder_is_masked(make_sandbox, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("visible\n")
    (data / "answers.csv").write_text("SECRET\n")
    hidden_dir = data / "private"
    hidden_dir.mkdir()
    (hidden_dir / "more.csv").write_text("SECRET\n")
    box = make_sandbox(
        mounts=[Mount(data, f"{AGENT_WORKSPACE}/data")],
        hidden=[data / "answers.csv", hidden_dir],
    )
    assert box.run("cat data/train.csv").output == "visible\n"
    answers = box.run("cat data/answers.csv")
    assert "SECRET" not in answers.output  # masked: empty or unreadable
    private = box.run("ls -A data/private; cat data/private/more.csv")
    assert "SECRET" not in private.output and private.exit_code != 0


def test_no_network_to_host_loopback(make_sandbox, loopback_server):
    port, accepted = loopback_server
    box = make_sandbox()
    probe = (
        f"python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', {port}), timeout=2); "
        "print('CONNECTED', s.recv(10))\""
    )
    result = box.run(probe)
    assert "CONNECTED" not in result.output
    assert result.exit_code != 0
    assert accepted == []
    # Only loopback exists inside.
    lines = box.run("cat /proc/net/dev").output.splitlines()[2:]
    assert [line.split(":")[0].strip() for line in lines] == ["lo"]


def test_timeout_kills_command_and_shell_stays_usable(make_sandbox):
    box = make_sandbox()
    box.run("cd /tmp && export KEEP=yes")
    started = time.monotonic()
    result = box.run("sleep 600", timeout_s=2)
    elapsed = time.monotonic() - started
    assert result.timed_out and elapsed < 30  # killed at its 2 s, not left to run 600 s
    assert "timed out after 2s" in result.observation()
    after = box.run('echo "$KEEP $PWD"')
    assert after.output.strip() == "yes /tmp"
    assert "sleep" not in box.run("ps -eo comm").output


def test_timeout_kills_the_whole_process_group_but_keeps_earlier_background_jobs(make_sandbox):
    box = make_sandbox()
    box.run("sleep 300 & echo started")
    result = box.run("bash -c 'sleep 400 & sleep 500 & wait'", timeout_s=1)
    assert result.timed_out
    survivors = box.run("ps -eo args").output
    assert "sleep 300" in survivors
    assert "sleep 400" not in survivors and "sleep 500" not in survivors


def test_builtin_loop_timeout_restarts_the_shell(make_sandbox):
    box = make_sandbox()
    result = box.run("while true; do :; done", timeout_s=1)
    assert result.timed_out and "restarted" in result.observation()
    assert box.run("echo alive").output == "alive\n"


def test_exit_restarts_the_shell(make_sandbox):
    box = make_sandbox()
    result = box.run("cd /tmp; exit 3")
    assert "new one was started" in result.observation()
    after = box.run("pwd")
    assert after.output.strip() == AGENT_WORKSPACE


def test_commands_cannot_read_the_protocol_stream(make_sandbox):
    box = make_sandbox()
    result = box.run("cat; read line; echo done", timeout_s=5)
    assert not result.timed_out and result.output.strip() == "done"


def test_fork_bomb_is_contained_and_episode_continues(make_sandbox):
    box = make_sandbox(limits=Limits(command_timeout_s=5, max_processes=64))
    notes: list[str] = list(box.run(":(){ :|:& };:").notes)  # on a fast machine the limit is hit at once
    for _ in range(50):  # the bomb needs a moment to reach the limit on a loaded machine
        result = box.run("echo still-here")
        notes += result.notes
        if any("process limit" in note for note in notes):
            break
        time.sleep(0.2)
    assert "still-here" in result.output
    assert any("process limit" in note for note in notes), notes
    assert box.run("ls / > /dev/null && echo forks-work").output.strip().endswith("forks-work")
    assert int(box.run("ls /proc | grep -cE '^[0-9]+$'").output.strip()) < 10


def test_large_allocation_is_contained(make_sandbox):
    box = make_sandbox(limits=Limits(command_timeout_s=20, memory_mb=1024))
    result = box.run("python3 -c 'b = bytearray(4 * 1024**3); print(\"ALLOCATED\", len(b))'")
    assert "ALLOCATED 4" not in result.output
    assert result.exit_code != 0
    assert box.run("echo ok").output == "ok\n"


def test_large_output_is_capped_head_and_tail_kept(make_sandbox):
    box = make_sandbox(limits=Limits(command_timeout_s=30, max_output_chars=10_000))
    result = box.run("python3 -c \"import sys; sys.stdout.write('HEAD' + 'x' * 50_000_000 + 'TAIL')\"")
    assert result.exit_code == 0
    assert len(result.output) < 12_000
    assert result.output.startswith("HEAD") and result.output.endswith("TAIL")
    assert result.cut_bytes > 49_000_000
    assert "cut" in result.output and "cut" in result.observation()


def test_file_size_limit(make_sandbox):
    box = make_sandbox(limits=Limits(command_timeout_s=10, max_file_size_mb=1))
    box.run("head -c 5000000 /dev/zero > big.bin")
    assert box.run("stat -c %s big.bin").output.strip() == str(1 << 20)


def test_close_leaves_no_process_behind(make_sandbox, workspace):
    box = make_sandbox()
    box.run("sleep 1000 & nohup sleep 1001 >/dev/null 2>&1 & setsid sleep 1002 & echo ok")
    root = box.shell.proc.pid
    box.close()
    time.sleep(0.2)
    assert not Path(f"/proc/{root}").exists()
    leftovers = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).startswith("sleep 100")]
    assert leftovers == []


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_host_environment_does_not_leak(make_sandbox, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    box = make_sandbox()
    assert "sk-should-not-leak" not in box.run("env").output


def test_missing_bwrap_names_the_fallback(monkeypatch, workspace):
    from researchgym.errors import SandboxError
    from researchgym.sandbox import SandboxSpec, create_sandbox

    monkeypatch.setenv("PATH", "/nonexistent")
    box = create_sandbox("bwrap", SandboxSpec(workspace=workspace))
    with pytest.raises(SandboxError, match="--sandbox local"):
        box.start()


def test_cpu_quota_limits_a_busy_loop(make_sandbox):
    box = make_sandbox(limits=Limits(command_timeout_s=20, cpus=0.5))
    if box.cgroup is None or "cpu" not in box.cgroup.applied:
        pytest.skip("no writable cpu cgroup on this host")
    script = "import time\nend = time.time() + 2\nwhile time.time() < end: pass\nprint(time.process_time())"
    result = box.run(f"python3 -c '{script}'")
    assert 0.5 <= float(result.output.strip()) <= 1.4  # about half of 2 s of wall clock


def test_sandbox_runs_the_hosts_python_environment(make_sandbox):
    import sys

    box = make_sandbox()
    result = box.run("python -c 'import sys, pyflakes; print(sys.prefix)'")
    assert result.exit_code == 0 and result.output.strip() == sys.prefix


def test_devices_are_passed_through_and_nothing_else(make_sandbox):
    """A GPU task's /dev/nvidia* files reach the sandbox; here a device bwrap's /dev lacks stands in."""
    device = next(
        (Path(p) for p in ("/dev/loop-control", "/dev/vcs", "/dev/kmsg", "/dev/cpu_dma_latency") if Path(p).exists()),
        None,
    )
    if device is None:
        pytest.skip("no spare character device on this machine")
    plain = make_sandbox("bwrap")
    assert plain.run(f"test -e {device} && echo present || echo absent").output.strip() == "absent"
    with_device = make_sandbox("bwrap", devices=[device])
    assert with_device.run(f"test -c {device} && echo present || echo absent").output.strip() == "present"
