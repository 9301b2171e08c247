"""The same episodes as Ray tasks: on a cluster, or on this machine for tests (extra `ray`).

Each episode runs in a Ray worker with its own sandboxes; its outcome (a plain dict) comes back
to this process, which alone writes the store, so the store stays one SQLite file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class EpisodeHost(Protocol):
    """What the Ray executor needs of the run it serves (the runner): it never imports the
    runner, which imports it."""

    store: Any
    config: Any
    run_dir: Path
    eval_secret: bytes | None

    def emit(self, kind: str, plan: Any, data: dict[str, Any]) -> None: ...

    def settle(self, plan: Any, outcome: dict[str, Any]) -> None: ...


def run_on_ray(
    host: EpisodeHost, plans: list[Any], play: Callable[..., dict[str, Any]], address: str | None = None
) -> None:
    """Play `plans` as Ray tasks running `play` (runner.play_episode); outcomes are settled here."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("the Ray executor needs the ray extra: pip install 'researchgym[ray]'") from exc

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=0.25)(play)  # episodes mostly wait on models and sandboxes
    try:
        pending = {}
        for plan in plans:
            host.store.mark_running(plan.id)
            host.emit("started", plan, {})
            pending[remote.remote(plan, host.config, str(host.run_dir), eval_secret=host.eval_secret)] = plan
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                plan = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # the worker died
                    outcome = {"status": "failed", "error": f"ray worker failed: {exc}"}
                host.settle(plan, outcome)
    finally:
        if started_here:
            ray.shutdown()
