"""The Ray pool: tasks as Ray tasks, on this machine or a cluster (Ray is imported only
when this pool is chosen)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ctloop.errors import ConfigError
from ctloop.workers._pool import WorkerLostError, WorkerPool, relay, run_task

__all__ = ["RayPool", "connect_ray"]

T = TypeVar("T")


def connect_ray(address: str | None = None) -> None:
    """Attach this process to Ray, once: to ``address``, else the ``ray_address`` setting,
    else a local Ray (one started with ``ray start`` or, failing that, a new one that ends
    with this process). Quiet: no dashboard, Ray's own logs at ERROR, and workers' output
    kept in Ray's session logs. Inside a Ray worker, or after the user's own
    ``ray.init``, the existing connection is used.

    >>> connect_ray()  # doctest: +SKIP
    """
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "Ray is not installed; install it with `pip install 'ctloop[ray]'`, or run "
            "steps with executor 'process' and trials with parallel='processes'"
        ) from exc
    if ray.is_initialized():
        return
    if address is None:
        from ctloop.config import Settings

        address = Settings.load().ray_address
    ray.init(
        address=address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False
    )


class RayPool(WorkerPool):
    """Each task a Ray task of ``cores`` CPUs, never retried by Ray, on the Ray at
    ``address`` (see :func:`connect_ray`). Ray stays up after :meth:`shutdown`, for
    later pools of this process.

    >>> pool = RayPool()  # doctest: +SKIP
    >>> pool.submit(pow, 2, 10).result()  # doctest: +SKIP
    1024
    """

    worker = "Ray worker"

    def __init__(self, address: str | None = None, *, cores: int = 1) -> None:
        connect_ray(address)
        import ray

        self._cores = cores
        self._task = ray.remote(run_task).options(num_cpus=cores, max_retries=0)
        self._running: dict[Any, Future[Any]] = {}
        self._lock = threading.Lock()

    @property
    def cores(self) -> int:
        return self._cores

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        ref = self._task.remote(self._cores, fn, *args)
        outer = relay(ref.future(), _lost_on_ray)
        with self._lock:
            self._running[ref] = outer
        outer.add_done_callback(lambda _: self._forget(ref))
        return outer

    def _forget(self, ref: Any) -> None:
        with self._lock:
            self._running.pop(ref, None)

    def share(self, value: Any) -> Any:
        import ray

        return ray.put(value)  # a task given this reference receives the value

    def shutdown(self, *, cancel: bool = False) -> None:
        import ray

        with self._lock:
            running = list(self._running)
        for ref in running if cancel else []:
            ray.cancel(ref, force=True)


def _lost_on_ray(exc: BaseException) -> BaseException | None:
    import ray

    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, BaseException):
        return cause  # the task's own error, raised in the worker
    if not isinstance(exc, ray.exceptions.RayError):
        return None
    error = WorkerLostError(
        f"the Ray worker running this task died ({type(exc).__name__}: {exc}); it was "
        "killed, ran out of memory or lost its machine"
    )
    error.__cause__ = exc
    return error
