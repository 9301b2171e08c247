"""The same episodes as Ray tasks: on a cluster, or on this machine for tests (extra `ray`).

Each episode runs in a Ray worker with its own sandboxes; its outcome (a plain dict) comes back
to this process, which alone writes the store, so the store stays one SQLite file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from researchgym.runs.runner import EpisodePlan, Runner


def run_on_ray(runner: Runner, plans: list[EpisodePlan], address: str | None = None) -> None:
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("the Ray executor needs the ray extra: pip install 'researchgym[ray]'") from exc
    from researchgym.runs.runner import play_episode

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=0.25)(play_episode)  # episodes mostly wait on models and sandboxes
    try:
        pending = {}
        for plan in plans:
            runner.store.mark_running(plan.id)
            runner._emit("started", plan, {})
            pending[remote.remote(plan, runner.config, str(runner.run_dir), eval_secret=runner.eval_secret)] = plan
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                plan = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # the worker died
                    outcome = {"status": "failed", "error": f"ray worker failed: {exc}"}
                runner.settle(plan, outcome)
    finally:
        if started_here:
            ray.shutdown()
