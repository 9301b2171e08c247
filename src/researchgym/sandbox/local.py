"""No isolation: a bash in the workspace on the host, with rlimits (and a cgroup when root).

For machines without bubblewrap and for trusted agents only: the agent can read anything the
host user can, including hidden files and the network.
"""

from __future__ import annotations

import os
import warnings

from researchgym.sandbox.base import GATEWAY_SOCKET, SandboxSpec
from researchgym.sandbox.bwrap import default_env, python_bin_path
from researchgym.sandbox.common import PACKAGE_TOOLS, ShellSandbox


class LocalSandboxWarning(UserWarning):
    pass


class LocalSandbox(ShellSandbox):
    name = "local"
    #: Commands see the host's files at their own paths (see sandbox.path_inside).
    sees_host_paths = True

    def __init__(self, spec: SandboxSpec) -> None:
        super().__init__(spec)
        self.workspace_path = str(spec.workspace.resolve())
        warnings.warn(
            "the 'local' sandbox does not isolate the agent: it can read hidden files, use the "
            "network and touch the host. Use the default 'bwrap' sandbox for untrusted agents.",
            LocalSandboxWarning,
            stacklevel=3,
        )

    def launcher(self) -> tuple[list[str], dict[str, str], str | None]:
        for mount in self.spec.mounts:
            # Mounts become symlinks inside the workspace (or absolute targets we cannot create).
            if mount.target.startswith(self.workspace_path) or not os.path.isabs(mount.target):
                link = (
                    os.path.join(self.workspace_path, mount.target) if not os.path.isabs(mount.target) else mount.target
                )
                if not os.path.lexists(link):
                    os.makedirs(os.path.dirname(link), exist_ok=True)
                    os.symlink(mount.source, link)
        env = default_env(f"{PACKAGE_TOOLS}:{python_bin_path()}", home=self.workspace_path)
        if self.spec.state_dir is not None:
            env["RESEARCHGYM_STATE_DIR"] = str(self.spec.state_dir)
        if self.spec.gateway_dir is not None:
            env["RESEARCHGYM_GATEWAY"] = str(self.spec.gateway_dir / GATEWAY_SOCKET)
        env.update(self.spec.env)
        return ["/bin/bash", "--noprofile", "--norc"], env, self.workspace_path
