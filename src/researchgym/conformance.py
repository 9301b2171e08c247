"""`researchgym check`: conformance checks a user can run on a sandbox provider or a task before
trusting its scores, in the spirit of Gymnasium's `check_env` and Inspect's sandbox self-check.

A sandbox must speak the shell protocol (a persistent shell in its workspace, exit codes,
timeouts that leave it usable, capped output) and, unless it says it does not isolate
(`sees_host_paths`, as `local` does), keep hidden host files, the network and writes to its
read-only mounts out of reach. A task must load, pass Gymnasium's `check_env`, keep its hidden
files unreachable from the agent's shell (neither at their host paths nor copied anywhere the
agent can read), keep its data read-only, answer `validate`, and, with `baseline=True`, have
its baseline reproduce the score the task declares.
"""

from __future__ import annotations

import hashlib
import shlex
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from researchgym.errors import ResearchGymError

#: How far a reproduced baseline may land from the declared score, relative to it (games and
#: RL are scored on random draws; the same seed does not make two machines' floats identical).
BASELINE_TOLERANCE = 0.05


@dataclass(frozen=True)
class Check:
    subject: str  # "sandbox bwrap", "task battleOfSexes (bwrap)"
    name: str
    status: str  # "pass", "fail" or "skip" (not applicable, with the reason in detail)
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "fail"


class _Checks:
    """Collects checks for one subject; an exception inside one check fails that check only."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.results: list[Check] = []

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append(Check(self.subject, name, "pass" if ok else "fail", detail))
        return ok

    def skip(self, name: str, why: str) -> None:
        self.results.append(Check(self.subject, name, "skip", why))

    def run(self, name: str, probe: Callable[[], tuple[bool, str]]) -> bool:
        try:
            ok, detail = probe()
        except Exception as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        return self.add(name, ok, detail)


# --------------------------------------------------------------------------- sandboxes


@contextmanager
def _listener() -> Iterator[int]:
    """A TCP port on the host's loopback that accepts connections (to test network isolation)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
                connection.close()
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()


def check_sandbox(name: str) -> list[Check]:
    """The shell protocol and, for an isolating provider, its isolation."""
    from researchgym.sandbox import SANDBOXES, Limits, Mount, Sandbox, SandboxSpec, create_sandbox, sees_host_paths

    checks = _Checks(f"sandbox {name}")
    try:
        SANDBOXES.get(name)
    except ResearchGymError as exc:
        checks.add("provider is registered", False, str(exc))
        return checks.results
    with tempfile.TemporaryDirectory(prefix="researchgym-check-") as scratch:
        root = Path(scratch)
        workspace, data, secret = root / "workspace", root / "data", root / "secret"
        for folder in (workspace, data, secret):
            folder.mkdir()
        (data / "train.csv").write_text("x,y\n1,2\n")
        (secret / "labels.csv").write_text("answer\n42\n")
        inside = "/home/agent/workspace" if not sees_host_paths(name) else str(workspace)
        spec = SandboxSpec(
            workspace=workspace,
            mounts=[Mount(data, f"{inside}/data", read_only=True)],
            hidden=[secret],
            limits=Limits(max_output_chars=2_000),
        )
        sandbox = create_sandbox(name, spec)
        checks.add("speaks the Sandbox protocol", isinstance(sandbox, Sandbox))
        try:
            sandbox.start()
        except Exception as exc:
            checks.add("starts", False, f"{type(exc).__name__}: {exc}")
            return checks.results
        try:
            _shell_protocol(checks, sandbox, workspace)
            if sees_host_paths(name):
                for what in ("hidden files unreachable", "no network", "read-only mounts"):
                    checks.skip(what, f"'{name}' does not isolate (sees_host_paths): use it only with agents you trust")
            else:
                _isolation(checks, sandbox, secret)
        finally:
            sandbox.close()
    return checks.results


def _shell_protocol(checks: _Checks, sandbox, workspace: Path) -> None:
    first = sandbox.run("pwd")
    checks.add(
        "starts in its workspace",
        first.output.strip() == sandbox.workspace_path and first.exit_code == 0,
        f"pwd printed {first.output.strip()!r}, workspace_path is {sandbox.workspace_path!r}",
    )
    checks.run(
        "exit codes",
        lambda: ((r := sandbox.run("(exit 7)")).exit_code == 7, f"`(exit 7)` gave {r.exit_code}"),
    )
    sandbox.run("mkdir -p sub && cd sub && export RESEARCHGYM_CHECK=kept")
    after = sandbox.run('pwd; echo "$RESEARCHGYM_CHECK"')
    checks.add(
        "persistent shell (cwd and variables)",
        after.output.split() == [f"{sandbox.workspace_path}/sub", "kept"],
        repr(after.output.strip()),
    )
    sandbox.run("cd " + shlex.quote(sandbox.workspace_path))
    sandbox.run("echo written > from-inside.txt")
    checks.add(
        "workspace is the host folder",
        (workspace / "from-inside.txt").is_file(),
        "a file written inside appears on the host" if (workspace / "from-inside.txt").is_file() else "it does not",
    )
    slow = sandbox.run("sleep 30", timeout_s=1.0)
    again = sandbox.run("echo alive")
    checks.add(
        "timeouts stop the command and leave the shell usable",
        slow.timed_out and again.output.strip().endswith("alive"),
        f"timed_out={slow.timed_out}, next command printed {again.output.strip()[-40:]!r}",
    )
    big = sandbox.run("head -c 100000 /dev/zero | tr '\\0' a")
    checks.add(
        "output is capped",
        len(big.output) <= 2_000 + 200 and big.cut_bytes > 0,
        f"{len(big.output)} characters kept, {big.cut_bytes} bytes cut",
    )


def _isolation(checks: _Checks, sandbox, secret: Path) -> None:
    hidden = sandbox.run(f"cat {shlex.quote(str(secret / 'labels.csv'))} 2>&1; ls {shlex.quote(str(secret))} 2>&1")
    checks.add("hidden files unreachable", "42" not in hidden.output, hidden.output.strip()[:120])
    with _listener() as port:
        probe = (
            'python3 -c \'import socket,sys\ntry:\n socket.create_connection(("127.0.0.1",'
            f'{port}),timeout=2); print("CONNECTED")\nexcept OSError as e: print("refused", e)\''
        )
        network = sandbox.run(probe, timeout_s=10)
    checks.add("no network", "CONNECTED" not in network.output, network.output.strip()[:120])
    write = sandbox.run("touch data/.researchgym-check 2>&1; echo rc=$?")
    checks.add(
        "read-only mounts",
        "rc=0" not in write.output and (sandbox.run("cat data/train.csv").output.startswith("x,y")),
        write.output.strip()[:120],
    )


# --------------------------------------------------------------------------- tasks


def check_task(task: str, sandbox: str = "bwrap", *, baseline: bool = False) -> list[Check]:
    """A task's contract in one sandbox; a task that cannot run here is one skipped check."""
    from gymnasium.utils.env_checker import check_env

    from researchgym.sandbox import sees_host_paths
    from researchgym.tasks.registry import load_task

    checks = _Checks(f"task {task} ({sandbox})")
    try:
        spec = load_task(task)
    except ResearchGymError as exc:
        checks.add("loads", False, str(exc))
        return checks.results
    checks.add("loads", True, spec.id)
    from researchgym.datasets import DatasetUnavailableError
    from researchgym.env import ResearchEnv
    from researchgym.errors import TaskConfigError
    from researchgym.hardware import HardwareError

    try:  # a missing extra, GPU or hub data: the task cannot run here, which is no failure of it
        ResearchEnv(spec, sandbox=sandbox).close()
    except (TaskConfigError, HardwareError, DatasetUnavailableError) as exc:
        checks.skip("can run here", str(exc))
        return checks.results

    def gymnasium_check() -> tuple[bool, str]:
        env = ResearchEnv(spec, sandbox=sandbox)
        try:
            with _warnings_as_list() as caught:
                check_env(env, skip_render_check=True)
            return True, "; ".join(caught)[:200]
        finally:
            env.close()

    try:
        checks.add("gymnasium check_env", *gymnasium_check())
    except AssertionError as exc:
        if sees_host_paths(sandbox) and "Deterministic" in str(exc):
            # Each episode's workspace is a fresh host folder, and the footer names the cwd.
            checks.skip("gymnasium check_env", f"'{sandbox}' shows each episode its own host folder: {exc}")
        else:
            checks.add("gymnasium check_env", False, f"AssertionError: {exc}")
    except Exception as exc:
        checks.add("gymnasium check_env", False, f"{type(exc).__name__}: {exc}")
    env = None
    try:
        env = ResearchEnv(spec, sandbox=sandbox, limits={"max_steps": 10})
        env.reset(seed=0)
        isolating = not sees_host_paths(sandbox)
        if isolating:
            checks.run("hidden files unreachable", lambda: _hidden_unreachable(env))
            checks.run("data read-only", lambda: _data_read_only(env))
        else:
            for what in ("hidden files unreachable", "data read-only"):
                checks.skip(what, f"'{sandbox}' does not isolate the agent")
        checks.run("validate answers (a score or a named failure)", lambda: _validate_answers(env))
    except Exception as exc:
        checks.add("an episode runs", False, f"{type(exc).__name__}: {exc}")
    finally:
        if env is not None:
            env.close()
    if baseline:
        checks.run("baseline reproduces", lambda: _baseline_reproduces(spec, sandbox))
    else:
        checks.skip("baseline reproduces", "not asked (--baseline)")
    return checks.results


@contextmanager
def _warnings_as_list() -> Iterator[list[str]]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages: list[str] = []
        yield messages
    messages.extend(str(w.message) for w in caught)


def _hidden_unreachable(env) -> tuple[bool, str]:
    """Hidden files are neither readable at their host paths nor copied anywhere the agent can
    read (a file of the same bytes under the workspace or the data). A hidden path inside a
    folder every sandbox binds (a Debian package's data under /usr) is masked where it stands:
    an empty folder, or an empty device in place of a file, is there but shows nothing."""
    spec = env.task
    hidden = [p for p in spec.hidden_paths() if p.exists()]
    files = [f for p in hidden for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    secret_hashes = {_sha256(f): f for f in files if f.stat().st_size <= 50 << 20}
    paths = " ".join(shlex.quote(str(p)) for p in [*hidden, spec.source_dir])
    probe = (
        f'for p in {paths}; do if [ -d "$p" ]; then [ -n "$(ls -A "$p" 2>/dev/null)" ] && echo "VISIBLE $p"; '
        'elif [ -f "$p" ] && [ -s "$p" ]; then echo "VISIBLE $p"; fi; done; true'
    )
    seen = env.step(probe)[0]
    visible = [line for line in seen.splitlines() if line.startswith("VISIBLE ")]
    if visible:
        return False, "; ".join(visible)[:200]
    if not secret_hashes:
        return True, f"{len(hidden)} hidden path(s) and the task folder not visible"
    biggest = max(f.stat().st_size for f in secret_hashes.values())
    listing = env.step(f"find -L . -type f -size -{biggest + 1}c -exec sha256sum {{}} + 2>/dev/null; true")[0]
    copies = [line.split(None, 1) for line in listing.splitlines() if len(line.split(None, 1)) == 2]
    leaked = [f"{where} = {secret_hashes[digest].name}" for digest, where in copies if digest in secret_hashes]
    if leaked:
        return False, "copies of hidden files: " + "; ".join(leaked)[:200]
    return True, (
        f"{len(hidden)} hidden path(s) and the task folder not visible, "
        f"{len(secret_hashes)} hidden file(s) not copied into reach"
    )


def _validate_answers(env) -> tuple[bool, str]:
    """The starter is validated: the evaluator runs and reports a score or a named failure (the
    starter of a training task has no artefact yet, so `submission_not_found` is an answer)."""
    observation, _, _, _, info = env.step("validate")
    entries = [s for s in info["scores"] if s["step"] == info["step"] and s["kind"] == "validate"]
    if not entries:
        return False, "validate recorded no score: " + observation.strip()[:120]
    entry = entries[-1]
    if "validation" in entry:
        return True, f"starter: {env.task.metric.name} = {entry['validation']['value']:.6g}"
    return True, f"starter: {entry['status']} ({entry['error'][:100]})"


def _data_read_only(env) -> tuple[bool, str]:
    mounts = [ds.mount_point for ds in env.task.datasets if ds.is_local]
    if not mounts:
        return True, "no local dataset"
    written = []
    for mount in mounts:
        target = shlex.quote(f"{mount}/.researchgym-check")
        if "rc=0" in env.step(f"touch {target} 2>/dev/null; echo rc=$?")[0]:
            written.append(mount)
    return not written, ("writable: " + ", ".join(written)) if written else f"{len(mounts)} dataset(s) read-only"


def _baseline_reproduces(spec, sandbox: str) -> tuple[bool, str]:
    from researchgym.agents.baseline import BaselineAgent
    from researchgym.env import ResearchEnv
    from researchgym.runs.episode import run_episode

    declared = spec.baseline_score
    if declared is None:
        return True, "the task declares no baseline score"
    result = run_episode(ResearchEnv(spec, sandbox=sandbox), BaselineAgent(), seed=0)
    if result.final_score is None:
        return False, f"the baseline scored nothing ({result.exit_status})"
    gap = abs(result.final_score - declared) / max(abs(declared), 1e-9)
    return gap <= BASELINE_TOLERANCE, f"{result.final_score:.6g} vs declared {declared:.6g} ({gap:.1%} apart)"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
