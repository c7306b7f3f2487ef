"""One worker pool for everything that runs in parallel: pipeline steps
(:mod:`ctloop.pipeline._executors`) and tuning trials (:mod:`ctloop.train._workers`).

:class:`WorkerPool` is the interface (its error contract is in its docstring);
:class:`InProcessPool` runs tasks in the calling process (the test seam),
:class:`ProcessPool` in processes of this machine with each task's native thread pools
limited to its cores, and :class:`RayPool` as Ray tasks. This package sits below every
layer and imports only the standard library, :mod:`ctloop.errors` and, for Ray's
address, :mod:`ctloop.config`, so the pipeline engine and the domain code can both use it.

>>> with InProcessPool() as pool:
...     [future.result() for future in pool.map(divmod, [(7, 2), (9, 4)])]
[(3, 1), (2, 1)]
"""

from __future__ import annotations

import typing

from ctloop.workers._pool import (
    InProcessPool,
    ProcessPool,
    WorkerLostError,
    WorkerPool,
    task_cores,
    thread_variables,
)

if typing.TYPE_CHECKING:
    from ctloop.workers._ray import RayPool, connect_ray

__all__ = [
    "InProcessPool",
    "ProcessPool",
    "RayPool",
    "WorkerLostError",
    "WorkerPool",
    "connect_ray",
    "task_cores",
    "thread_variables",
]


def __getattr__(name: str) -> typing.Any:
    # Ray's pool loads when named, so that choosing another pool never imports it
    if name in ("RayPool", "connect_ray"):
        from ctloop.workers import _ray

        return getattr(_ray, name)
    raise AttributeError(f"module 'ctloop.workers' has no attribute {name!r}")
