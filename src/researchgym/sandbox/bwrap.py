"""The default provider: bubblewrap namespaces, no daemon, no root needed.

Inside: a read-only view of the system and the Python environment, the workspace writable at
/home/agent/workspace, data read-only, loopback-only networking, a fresh pid namespace and uid
1000. Hidden files are never bound; if one lies under a bound directory it is masked.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from researchgym.errors import SandboxError
from researchgym.sandbox.base import (
    AGENT_HOME,
    AGENT_WORKSPACE,
    GATEWAY_DIR,
    GATEWAY_SOCKET,
    STATE_DIR,
    TOOLS_DIR,
    TOOLS_LIB_DIR,
    SandboxSpec,
)
from researchgym.sandbox.common import PACKAGE_TOOLS, PACKAGE_TOOLS_LIB, ShellSandbox

_FALLBACK = "run with `--sandbox local` (no isolation) if you trust the agent"
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/alternatives")
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/mime.types",
    "/etc/matplotlibrc",
    "/etc/fonts",
)


def python_prefixes() -> list[Path]:
    """The interpreter's prefixes (venv and base) that are not already under /usr."""
    found: list[Path] = []
    for prefix in {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.prefix)}:
        if not str(prefix).startswith("/usr/") and prefix not in found:
            found.append(prefix)
    return found


def bwrap_path() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxError(
            "bubblewrap (`bwrap`) is not installed. Install it (`apt-get install bubblewrap`, or "
            f"`make install` as root), or {_FALLBACK}."
        )
    return path


class BwrapSandbox(ShellSandbox):
    name = "bwrap"
    workspace_path = AGENT_WORKSPACE

    def __init__(self, spec: SandboxSpec) -> None:
        super().__init__(spec)
        self._etc = tempfile.TemporaryDirectory(prefix="researchgym-etc-")

    def _identity_files(self) -> list[str]:
        """A passwd and group naming the `agent` user, so tools that look the user up work."""
        etc = Path(self._etc.name)
        (etc / "passwd").write_text(
            f"root:x:0:0:root:/root:/bin/bash\nagent:x:1000:1000:agent:{AGENT_HOME}:/bin/bash\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        )
        (etc / "group").write_text("root:x:0:\nagent:x:1000:\nnogroup:x:65534:\n")
        (etc / "hostname").write_text("researchgym\n")
        return [
            "--ro-bind",
            str(etc / "passwd"),
            "/etc/passwd",
            "--ro-bind",
            str(etc / "group"),
            "/etc/group",
            "--ro-bind",
            str(etc / "hostname"),
            "/etc/hostname",
        ]

    def argv(self) -> list[str]:
        spec = self.spec
        args = [
            bwrap_path(),
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--uid",
            "1000",
            "--gid",
            "1000",
            "--hostname",
            "researchgym",
        ]
        if spec.network:
            args.append("--share-net")
        binds: list[tuple[Path, str]] = []  # (host source, target) for masking hidden files

        def ro(source: Path | str, target: str | None = None) -> None:
            source = Path(source)
            target = target or str(source)
            if source.is_symlink() and str(source).count("/") == 1:
                args.extend(["--symlink", os.readlink(source), target])
                return
            args.extend(["--ro-bind", str(source), target])
            binds.append((source.resolve(), target))

        for directory in _SYSTEM_DIRS:
            if os.path.lexists(directory):
                ro(directory)
        for path in _ETC_FILES:
            if os.path.exists(path):
                ro(path)
        args += self._identity_files()
        # Fresh /proc, /dev and /tmp first: a later bind (a virtualenv under /tmp, say) must not
        # be covered by them.
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", AGENT_HOME]
        for device in spec.devices:
            args += ["--dev-bind", str(device), str(device)]
        for prefix in python_prefixes():
            ro(prefix)
        args += ["--bind", str(spec.workspace), AGENT_WORKSPACE]
        binds.append((spec.workspace.resolve(), AGENT_WORKSPACE))
        for mount in spec.mounts:
            if not mount.source.exists():
                raise SandboxError(f"cannot mount {mount.source} at {mount.target}: it does not exist")
            args += ["--ro-bind" if mount.read_only else "--bind", str(mount.source), mount.target]
            binds.append((mount.source.resolve(), mount.target))
        ro(PACKAGE_TOOLS, TOOLS_DIR)
        ro(PACKAGE_TOOLS_LIB, TOOLS_LIB_DIR)
        if spec.state_dir is not None:
            args += ["--bind", str(spec.state_dir), STATE_DIR]
        if spec.gateway_dir is not None:
            args += ["--ro-bind", str(spec.gateway_dir), GATEWAY_DIR]
        args += self._masks(binds)
        args += ["--chdir", AGENT_WORKSPACE, "/bin/bash", "--noprofile", "--norc"]
        return args

    def _masks(self, binds: list[tuple[Path, str]]) -> list[str]:
        """Cover every hidden path that would otherwise be visible through a bound directory."""
        masks: list[str] = []
        for hidden in self.spec.hidden:
            hidden = hidden.resolve()
            if not hidden.exists():
                continue
            for source, target in binds:
                if hidden == source or hidden.is_relative_to(source):
                    inside = str(Path(target) / hidden.relative_to(source))
                    if hidden.is_dir():
                        masks += ["--tmpfs", inside, "--remount-ro", inside]
                    else:
                        masks += ["--ro-bind", "/dev/null", inside]
        return masks

    def launcher(self) -> tuple[list[str], dict[str, str], str | None]:
        env = default_env(f"{TOOLS_DIR}:{python_bin_path()}", home=AGENT_HOME)
        if self.spec.state_dir is not None:
            env["RESEARCHGYM_STATE_DIR"] = STATE_DIR
        if self.spec.gateway_dir is not None:
            env["RESEARCHGYM_GATEWAY"] = f"{GATEWAY_DIR}/{GATEWAY_SOCKET}"
        env.update(self.spec.env)
        return self.argv(), env, None

    def start(self) -> None:
        try:
            super().start()
        except SandboxError as exc:
            raise SandboxError(
                f"bubblewrap could not start the sandbox: {exc}. "
                f"Check that unprivileged user namespaces are enabled, or {_FALLBACK}."
            ) from exc

    def close(self) -> None:
        super().close()

    def __del__(self) -> None:
        try:
            self._etc.cleanup()
        except Exception:
            pass


def python_bin_path() -> str:
    bins = [str(Path(sys.prefix) / "bin")]
    if sys.base_prefix != sys.prefix:
        bins.append(str(Path(sys.base_prefix) / "bin"))
    return ":".join(bins + ["/usr/local/bin", "/usr/bin", "/bin"])


def default_env(path: str, home: str) -> dict[str, str]:
    """A small, explicit environment: nothing of the host's leaks in (no API keys)."""
    env = {
        "PATH": path,
        "HOME": home,
        "USER": "agent",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PAGER": "cat",
        "GIT_PAGER": "cat",
        "MPLBACKEND": "Agg",
        "HF_HUB_OFFLINE": "1",
        "TMPDIR": "/tmp",
    }
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    return env
