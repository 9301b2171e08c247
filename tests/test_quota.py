"""The disk quota on every host folder a sandbox can write (the workspace and the tools' state
folder), counted by allocated blocks and watched between commands too, in real bubblewrap
sandboxes. Each writer is bounded (a fixed number of megabytes, paced) so that a broken quota
fails a test instead of filling the disk; only processes a test started (named by a token) are
counted."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from researchgym.sandbox import Limits
from researchgym.sandbox.base import STATE_DIR
from researchgym.sandbox.quota import STATE_MAX_MB, usage

MiB = 1 << 20
POLL_BOUND_S = 60.0  # generous: only a bound, never a speed requirement


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    folder.mkdir()
    return folder


@pytest.fixture
def box(make_sandbox, state_dir):
    # No per-file size limit: a 10 GB sparse file must be possible.
    limits = Limits(max_workspace_mb=20, max_workspace_files=2000, max_file_size_mb=None, command_timeout_s=60)
    return make_sandbox(limits=limits, state_dir=state_dir)


def processes_with(token: str) -> list[int]:
    """Host pids whose command line holds `token` (the sandbox's processes are visible on the host)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as handle:
                if token.encode() in handle.read():
                    found.append(int(name))
        except OSError:
            continue
    return found


def settle(path: Path, token: str | None = None, quiet_s: float = 2.0) -> int:
    """Wait until `path` stops growing for `quiet_s` (and no process holding `token` is left),
    up to POLL_BOUND_S; return its size on disk."""
    deadline = time.monotonic() + POLL_BOUND_S
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        size = usage(path.parent).bytes if path.exists() else 0
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= quiet_s and not (token and processes_with(token)):
            return size
        time.sleep(0.1)
    return last


def background_writer(target: str, token: str, megabytes: int = 300) -> str:
    """A detached job that starts after the command returned and writes `megabytes` MiB, paced,
    then leaves a `finished` mark: killed in time, the mark never appears."""
    script = (
        f"sleep 1; for i in $(seq {megabytes}); do head -c 1M /dev/zero >> {target}/big; sleep 0.01; done; "
        f": > {target}/finished"
    )
    return f"(exec -a {token} bash -c '{script}') > /dev/null 2>&1 & echo started"


@pytest.mark.parametrize("target", ["workspace", "state"])
def test_a_background_job_writing_between_commands_is_stopped(box, workspace, state_dir, target):
    token = f"rgquota-{uuid.uuid4().hex}"
    inside, host = ("/home/agent/workspace/sub", workspace / "sub") if target == "workspace" else (STATE_DIR, state_dir)
    cap = 20 if target == "workspace" else STATE_MAX_MB
    assert (
        box.run("mkdir -p /home/agent/workspace/sub && cd /home/agent/workspace/sub && pwd").output.strip()
        == "/home/agent/workspace/sub"
    )
    result = box.run(background_writer(inside, token))
    assert "started" in result.output and not result.notes, result.observation()

    # No command runs from here on: the watcher alone must stop the writer.
    settle(host / "big", token)
    assert not processes_with(token), "the background writer must have been killed"
    assert not (host / "finished").exists(), "the writer ran to its end: the quota did not stop it"
    # What the quota counts is the whole area (the workspace's folders take blocks too): the
    # writer's own folder alone may stop at exactly the cap.
    size = usage(workspace if target == "workspace" else state_dir).bytes
    assert cap * MiB < size < 300 * MiB

    observation = box.run("pwd").observation()
    assert "while no command was running" in observation and "over its quota" in observation, observation
    assert ("the workspace" if target == "workspace" else "state folder") in observation
    assert "/home/agent/workspace/sub" in observation, "the shell survives (its working directory too)"

    cleaned = box.run(f"rm -f {inside}/big && echo cleaned")  # deleting always works
    assert "cleaned" in cleaned.output and not cleaned.notes, cleaned.observation()
    again = box.run(f"head -c 1M /dev/zero > {inside}/small && echo written")  # under the quota again
    assert "written" in again.output and not again.notes, again.observation()
    time.sleep(1.5)  # a few idle scans: nothing grows, nothing trips
    assert not box.run("echo quiet").notes


def test_writing_into_the_state_folder_past_its_cap_stops_the_command(box, state_dir):
    result = box.run(
        f"for i in $(seq 300); do head -c 1M /dev/zero >> {STATE_DIR}/big; sleep 0.02; done; echo finished"
    )
    observation = result.observation()
    assert "finished" not in result.output, "the command ran to its end: the state folder is not under a quota"
    assert "state folder" in observation and "over its quota" in observation and f"{STATE_MAX_MB} MiB" in observation
    assert usage(state_dir).bytes < 300 * MiB
    cleaned = box.run(f"rm -f {STATE_DIR}/big && echo cleaned")
    assert "cleaned" in cleaned.output and not cleaned.notes, cleaned.observation()
    assert box.run("echo alive").output.strip() == "alive"


def test_the_state_folder_holds_many_files_only_up_to_its_cap(box, state_dir):
    result = box.run(
        f"mkdir {STATE_DIR}/many && cd {STATE_DIR}/many && "
        "seq 30000 | xargs -n 1000 sh -c 'touch \"$@\"; sleep 0.1' _ && echo finished"
    )  # 3 s at least
    assert "finished" not in result.output
    assert "state folder" in result.observation() and "files" in result.observation()
    assert usage(state_dir).files < 30000
    cleaned = box.run(f"cd /; rm -rf {STATE_DIR}/many && echo cleaned")
    assert "cleaned" in cleaned.output and not cleaned.notes, cleaned.observation()


def test_a_sparse_file_costs_what_it_holds(box, workspace):
    result = box.run("truncate -s 10G sparse.bin && truncate -s 100M sparse100.bin && ls -l sparse.bin && sleep 1.5")
    assert "10737418240" in result.output, result.observation()
    assert not result.notes, result.observation()  # 10 GB apparent, nothing allocated
    assert usage(workspace).bytes < MiB
    time.sleep(1.5)  # idle scans see it too, and leave it be
    assert not box.run("echo fine").notes

    real = box.run("head -c 100M /dev/zero > real.bin && sleep 30 && echo finished")  # the same 100 MB, written
    assert "finished" not in real.output
    assert "the workspace went over its quota" in real.observation(), real.observation()
    cleaned = box.run("rm real.bin sparse.bin sparse100.bin && echo cleaned")
    assert "cleaned" in cleaned.output and not cleaned.notes, cleaned.observation()
    assert usage(workspace).bytes < MiB


def test_a_job_that_stays_under_the_quota_is_left_alone(box, workspace):
    token = f"rgquota-{uuid.uuid4().hex}"
    script = "sleep 1; head -c 5M /dev/zero > five.bin; sleep 1; : > done.mark"
    assert "started" in box.run(f"(exec -a {token} bash -c '{script}') > /dev/null 2>&1 & echo started").output
    deadline = time.monotonic() + POLL_BOUND_S
    while not (workspace / "done.mark").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (workspace / "done.mark").exists(), "a job under the quota must not be killed"
    assert not box.run("echo fine").notes


def test_a_shell_that_writes_after_its_command_ended_is_killed(box, workspace):
    """A function named like the builtin that prints the end-of-command marker keeps the shell
    itself writing after the command returned; killing its background jobs does not stop it."""
    writer = (
        's=$(head -c 1048575 /dev/zero | tr "\\0" x); '
        'for ((i = 0; i < 300; i++)); do builtin echo "$s" >> /home/agent/workspace/big; sleep 0.01; done; '
        ": > /home/agent/workspace/finished"
    )
    result = box.run(f'printf() {{ builtin printf "$@"; if [[ "$1" == *E* ]]; then {writer}; fi; }}; echo armed')
    assert "armed" in result.output

    size = settle(workspace / "big")
    assert not (workspace / "finished").exists(), "the shell wrote to its end: it was not stopped"
    assert 20 * MiB < size < 300 * MiB

    observation = box.run("unset -f printf; echo alive").observation()
    assert "alive" in observation
    assert "the shell itself kept writing" in observation and "a new one was started" in observation, observation
    cleaned = box.run("rm -f big && echo cleaned")
    assert "cleaned" in cleaned.output and not cleaned.notes, cleaned.observation()
