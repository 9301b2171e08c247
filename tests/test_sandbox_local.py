"""The local provider: same shell protocol, no isolation, and it says so."""

from __future__ import annotations

import warnings

import pytest

from researchgym.errors import UnknownNameError
from researchgym.sandbox import Limits, SandboxSpec, create_sandbox
from researchgym.sandbox.local import LocalSandboxWarning


def test_local_sandbox_warns_and_runs_in_the_workspace(workspace):
    with pytest.warns(LocalSandboxWarning, match="does not isolate"):
        box = create_sandbox("local", SandboxSpec(workspace=workspace, limits=Limits(command_timeout_s=5)))
    box.start()
    try:
        assert box.run("pwd").output.strip() == str(workspace.resolve())
        box.run("cd .. && export X=1")
        assert box.run("echo $X; pwd").output.split() == ["1", str(workspace.resolve().parent)]
        result = box.run("sleep 60", timeout_s=1)
        assert result.timed_out and box.run("echo ok").output == "ok\n"
        assert box.run("command -v validate").output.strip().endswith("tools/bin/validate")
    finally:
        box.close()


def test_unknown_sandbox_names_the_known_ones(workspace):
    with pytest.raises(UnknownNameError) as info:
        create_sandbox("bwarp", SandboxSpec(workspace=workspace))
    assert "bwrap" in str(info.value) and "Did you mean 'bwrap'" in str(info.value)


def test_sandbox_by_module_reference(workspace):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box = create_sandbox("researchgym.sandbox.local:LocalSandbox", SandboxSpec(workspace=workspace))
    assert box.name == "local"


def test_local_close_kills_detached_processes(make_sandbox):
    box = make_sandbox("local")
    if box.cgroup is None:
        pytest.skip("detached processes can only be found through a cgroup, and there is none here")
    box.run("setsid sleep 1234 > /dev/null 2>&1 < /dev/null & nohup sleep 1235 >/dev/null 2>&1 &")
    members = box.cgroup.members()
    assert len(members) >= 3
    cgroup_dirs = list(box.cgroup.dirs.values())
    box.close()
    import os
    import time

    time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in members)
    assert not any(path.exists() for path in cgroup_dirs)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
