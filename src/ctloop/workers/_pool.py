"""The worker pool interface, the in-process pool and the process pool.

:class:`WorkerPool` is what the pipeline's executors and tuning's workers run on; the
Ray pool is in :mod:`ctloop.workers._ray`, imported only when chosen.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, TypeVar

from ctloop.errors import WorkerLostError

__all__ = [
    "InProcessPool",
    "ProcessPool",
    "WorkerLostError",
    "WorkerPool",
    "task_cores",
    "thread_variables",
]

T = TypeVar("T")
#: the variables native thread pools (OpenMP, OpenBLAS, MKL…) read when they start
THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)  # fmt: skip


class WorkerPool(ABC):
    """Runs functions in workers, each task on ``cores`` CPUs.

    Error contract: :meth:`submit` never raises for the function's own failure — its
    future raises the function's exception. A worker that dies makes the future of each
    task it was running raise :class:`WorkerLostError` (the pool's other tasks go on
    where the backend allows). :meth:`share` raises the serialiser's own exception for a
    value that cannot be sent. :meth:`shutdown` waits for running tasks, or with
    ``cancel`` stops them (their futures then raise :class:`WorkerLostError`).

    >>> with InProcessPool() as pool:
    ...     pool.submit(pow, 2, 10).result()
    1024
    """

    #: what one worker is called in messages ("worker process", "Ray worker")
    worker = "worker"

    @property
    @abstractmethod
    def cores(self) -> int:
        """The CPUs each task is given (its native thread pools are limited to them)."""

    @abstractmethod
    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Start ``fn(*args)`` in a worker; the future resolves to what it returns."""

    def map(self, fn: Callable[..., T], arguments: Iterable[tuple[Any, ...]]) -> list[Future[T]]:
        """One task per tuple of ``arguments``; their futures, in order."""
        return [self.submit(fn, *args) for args in arguments]

    def share(self, value: Any) -> Any:
        """``value`` made ready to go to many tasks once: pass what this returns as an
        argument in its place (a task receives ``value`` itself)."""
        return value

    def shutdown(self, *, cancel: bool = False) -> None:  # noqa: B027  # nothing to release
        """Release the workers; ``cancel`` stops tasks still running or waiting."""

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(cancel=exc[0] is not None)


class InProcessPool(WorkerPool):
    """Runs each task at once, in the calling thread: the pool of ``executor="local"``
    and the test seam. Arguments are passed as they are, unpickled; an interrupt
    (``KeyboardInterrupt``, ``SystemExit``) is raised by :meth:`submit` itself.

    >>> InProcessPool().submit(len, "abc").result()
    3
    """

    worker = "calling process"

    @property
    def cores(self) -> int:
        return os.cpu_count() or 1

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # the function's own failure: the future's
            future.set_exception(exc)
        return future  # KeyboardInterrupt and SystemExit reach the caller at once


class ProcessPool(WorkerPool):
    """``workers`` processes of this machine (forkserver on Linux), each task limited to
    ``cores`` CPUs (default: this machine's CPUs shared among the workers). Functions
    and arguments are pickled: define functions at module level.

    >>> with ProcessPool(2) as pool:  # doctest: +SKIP
    ...     [f.result() for f in pool.map(pow, [(2, 3), (3, 2)])]
    [8, 9]
    """

    worker = "worker process"

    def __init__(self, workers: int, *, cores: int | None = None) -> None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        self._cores = cores or max(1, (os.cpu_count() or 1) // workers)
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=_limit_threads,
            initargs=(self._cores,),
        )

    @property
    def cores(self) -> int:
        return self._cores

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        inner = self._pool.submit(run_task, self._cores, fn, *args)
        return relay(inner, _lost_process)

    def share(self, value: Any) -> Any:
        return _Pickled(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def shutdown(self, *, cancel: bool = False) -> None:
        if cancel:  # stop tasks in flight instead of waiting for them
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=cancel)


class _Pickled:
    """A shared value, pickled once; unpickled in the worker before its task starts."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob


_cores: int | None = None


def task_cores() -> int | None:
    """The CPUs the pool task running here was given; ``None`` outside a pool's worker.

    >>> task_cores() is None
    True
    """
    return _cores


def run_task(cores: int, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` as a task given ``cores`` CPUs (a worker's entry point): shared
    values are unpickled first (that imports their libraries), then native thread pools
    are limited to ``cores`` while it runs."""
    global _cores
    values = [pickle.loads(a.blob) if isinstance(a, _Pickled) else a for a in args]
    _cores = cores
    try:
        with _thread_limits(cores):
            return fn(*values)
    finally:
        _cores = None


@contextmanager
def _thread_limits(cores: int) -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # no native thread pool to limit beyond the variables
        yield
        return
    with threadpool_limits(limits=cores):
        yield


def thread_variables(cores: int) -> dict[str, str]:
    """The environment variables that hold native thread pools started later to ``cores``.

    >>> thread_variables(2)["OMP_NUM_THREADS"]
    '2'
    """
    return dict.fromkeys(THREAD_VARIABLES, str(cores))


def _limit_threads(cores: int) -> None:
    """Worker start-up: thread pools loaded later read these variables."""
    os.environ.update(thread_variables(cores))


def relay(inner: Future[Any], lost: Callable[[BaseException], BaseException | None]) -> Future[Any]:
    """A future settled like ``inner``, except that an error ``lost`` turns into a
    :class:`WorkerLostError` (``lost`` returns ``None`` for the task's own errors)."""
    outer: Future[Any] = Future()

    def settle(done: Future[Any]) -> None:
        try:
            outer.set_result(done.result())
        except BaseException as exc:
            outer.set_exception(lost(exc) or exc)

    inner.add_done_callback(settle)
    return outer


def _lost_process(exc: BaseException) -> BaseException | None:
    if not isinstance(exc, BrokenProcessPool):
        return None
    error = WorkerLostError(
        f"the worker process running this task died (BrokenProcessPool: {exc}); it was "
        "killed or ran out of memory: give it more memory or run fewer tasks at once"
    )
    error.__cause__ = exc
    return error
