"""The worker pool contract, on the in-process pool, the process pool and Ray: results
come back in order, a task's own error is its future's, shared values reach every task,
each task is held to its cores, and a worker that dies is a ``WorkerLostError``."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ctloop.workers import InProcessPool, ProcessPool, WorkerLostError, WorkerPool, task_cores


def fail(message: str) -> None:
    raise ValueError(message)


def length(value: Any) -> int:
    return len(value)


def cores_seen() -> tuple[int | None, list[int]]:
    """The cores this task was given, and the threads of each native pool loaded here."""
    import numpy  # noqa: F401  # loads its BLAS, whose threads the pool limits
    from threadpoolctl import threadpool_info

    return task_cores(), [int(pool["num_threads"]) for pool in threadpool_info()]


def kill_own_worker() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


class PoolContract:
    """What every pool does."""

    @pytest.fixture
    def pool(self) -> Iterator[WorkerPool]:
        raise NotImplementedError

    def test_results_come_back_in_order(self, pool: WorkerPool) -> None:
        futures = pool.map(divmod, [(7, 2), (9, 4), (10, 5)])
        assert [f.result(timeout=120) for f in futures] == [(3, 1), (2, 1), (2, 0)]
        assert pool.submit(pow, 2, 10).result(timeout=120) == 1024

    def test_a_task_s_own_error_is_its_future_s(self, pool: WorkerPool) -> None:
        future = pool.submit(fail, "bad value 3")
        with pytest.raises(ValueError, match="bad value 3"):
            future.result(timeout=120)
        assert pool.submit(pow, 3, 2).result(timeout=120) == 9, "the pool goes on"

    def test_a_shared_value_reaches_every_task(self, pool: WorkerPool) -> None:
        shared = pool.share(list(range(1000)))
        futures = pool.map(length, [(shared,), (shared,)])
        assert [f.result(timeout=120) for f in futures] == [1000, 1000]


class WorkerContract(PoolContract):
    """What pools whose tasks run in other processes do."""

    def test_each_task_is_held_to_its_cores(self, pool: WorkerPool) -> None:
        given, threads = pool.submit(cores_seen).result(timeout=120)
        assert given == pool.cores
        assert threads and all(n <= pool.cores for n in threads), threads
        assert task_cores() is None, "this process is no pool's worker"

    def test_a_worker_that_dies_is_a_worker_lost_error(self, pool: WorkerPool) -> None:
        with pytest.raises(WorkerLostError, match=f"the {pool.worker} running this task died"):
            pool.submit(kill_own_worker).result(timeout=120)

    def test_shutdown_with_cancel_stops_running_tasks(self, pool: WorkerPool) -> None:
        future = pool.submit(sleep, 60.0)
        time.sleep(1.0)  # let it start
        started = time.monotonic()
        pool.shutdown(cancel=True)
        with pytest.raises(WorkerLostError):
            future.result(timeout=30)
        assert time.monotonic() - started < 30, "the task was stopped, not waited for"


class TestInProcessPool(PoolContract):
    @pytest.fixture
    def pool(self) -> Iterator[WorkerPool]:
        with InProcessPool() as pool:
            yield pool

    def test_tasks_run_at_once_in_the_calling_process(self, pool: WorkerPool) -> None:
        assert pool.submit(os.getpid).done()
        assert pool.submit(os.getpid).result() == os.getpid()
        assert pool.share(length) is length, "nothing is pickled"


class TestProcessPool(WorkerContract):
    @pytest.fixture
    def pool(self) -> Iterator[WorkerPool]:
        with ProcessPool(2, cores=1) as pool:
            yield pool

    def test_a_value_that_cannot_be_pickled_is_refused_when_shared(self, pool: WorkerPool) -> None:
        with pytest.raises(Exception, match="lambda"):
            pool.share(lambda: 1)

    def test_by_default_workers_share_the_machine_s_cpus(self) -> None:
        with ProcessPool(2) as pool:
            assert pool.cores == max(1, (os.cpu_count() or 1) // 2)
            assert pool.submit(cores_seen).result(timeout=120)[0] == pool.cores


class TestRayPool(WorkerContract):
    @pytest.fixture
    def pool(self, ray_cluster: None) -> Iterator[WorkerPool]:
        from ctloop.workers import RayPool

        pool = RayPool(cores=1)
        yield pool
        pool.shutdown(cancel=True)
