"""Where episodes run: threads in this process, or Ray tasks (on a cluster, or on this machine).

Both take a function and its arguments and hand back a `concurrent.futures.Future`, so the
runner has one loop for both: it alone decides how many episodes are in flight, marks them
running, and settles their outcomes into the store, whichever executor played them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from researchgym.errors import ResearchGymError
from researchgym.extras import install_hint

EXECUTORS = ("local", "ray")


class EpisodeExecutor(Protocol):
    #: True when the work runs in this process, so it may be handed objects that cannot be
    #: pickled (the per-provider model gates).
    in_process: bool

    def submit(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]: ...

    def shutdown(self) -> None: ...


class InlineExecutor:
    """Plays each call at once, in this thread: a run of one episode (the command line's single
    episode), so a human model reads the terminal and Ctrl-C stops the episode itself."""

    in_process = True

    def submit(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(function(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def shutdown(self) -> None:
        pass


class ThreadExecutor:
    in_process = True

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="episode")

    def submit(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._pool.submit(function, *args, **kwargs)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Each call is a Ray task (a quarter CPU: episodes mostly wait on models and sandboxes);
    its result comes back as a future. Ray is started here unless it already runs."""

    in_process = False

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            # a ResearchGymError, so the command line prints it as one line rather than a traceback
            raise ResearchGymError(f"the Ray executor needs the ray extra: {install_hint('ray')}") from exc
        self._ray = ray
        self._started_here = not ray.is_initialized()
        if self._started_here:
            try:
                if address:
                    ray.init(address=address, log_to_driver=False)
                else:
                    ray.init(include_dashboard=False, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at --address {address}" if address else "a local Ray instance"
                raise ResearchGymError(
                    f"cannot reach {where}: {exc}. Start one (ray start --head) or leave --address out "
                    "to start Ray here"
                ) from None
        self._remotes: dict[Callable[..., Any], Any] = {}

    def submit(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        remote = self._remotes.get(function)
        if remote is None:
            remote = self._remotes[function] = self._ray.remote(num_cpus=0.25)(function)
        return remote.remote(*args, **kwargs).future()

    def shutdown(self) -> None:
        if self._started_here:
            self._ray.shutdown()


def make_executor(name: str, workers: int, address: str | None = None) -> EpisodeExecutor:
    """`workers` is the most calls in flight at once; one local worker plays inline."""
    if name == "local":
        return InlineExecutor() if workers <= 1 else ThreadExecutor(workers)
    if name == "ray":
        return RayExecutor(address)
    raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
