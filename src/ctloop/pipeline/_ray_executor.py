"""``executor="ray"``: each step runs as a Ray task, on this machine or on a cluster.

The first run that uses it attaches this process to Ray (``CTLOOP_RAY_ADDRESS`` or
``ray_address:`` in ``ctloop.yaml``; without one a local Ray, see
:func:`ctloop.workers.connect_ray`). Ray then stays up for the life of the process, like
a pool: later runs reuse it. A step takes one CPU and is never retried by Ray
(``ctloop resume`` decides what runs again). It sees the run's settings (home and stores)
and this process's environment variables, less those that describe a machine (``PATH``,
``HOME``, ``RAY_*``, …), for as long as it runs. On a cluster of several machines every
machine must reach the stores: PostgreSQL and S3, not SQLite and a local folder.

Error contract (:class:`~ctloop.pipeline._executors.Executor`): a step's own failure is a
failed :class:`~ctloop.pipeline._worker.StepOutcome`; a Ray worker that dies (killed, out
of memory, its machine lost) resolves to a failed outcome naming the step, which the
runner records. The Ray plumbing is :class:`ctloop.workers.RayPool`.

>>> train_flights.run(executor="ray")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from ctloop.config import Settings
from ctloop.pipeline._dsl import Step
from ctloop.pipeline._executors import Executor
from ctloop.pipeline._worker import StepOutcome, StepTask, run_in_worker

__all__ = ["RayExecutor", "run_on_ray"]

# variables that describe the machine or the Ray worker, not the run: never sent
_MACHINE = {
    "PATH", "HOME", "PWD", "OLDPWD", "SHLVL", "_", "HOSTNAME", "USER", "LOGNAME", "SHELL",
    "TERM", "TMPDIR", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
    "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS",
}  # fmt: skip


class RayExecutor(Executor):
    """Runs steps as Ray tasks (one CPU each) on the Ray that ``settings`` names.

    >>> executor = RayExecutor(Settings.load())  # doctest: +SKIP
    >>> executor.submit(task, step_obj).result().status  # doctest: +SKIP
    'succeeded'
    """

    def __init__(self, settings: Settings | None = None) -> None:
        from ctloop.workers import RayPool

        settings = settings or Settings.load()
        super().__init__(RayPool(settings.ray_address, cores=1))
        self._environment = _step_environment(settings)

    def call(self, task: StepTask, step_obj: Step) -> tuple[Any, ...]:
        return run_on_ray, replace(task, environment=self._environment)


def run_on_ray(task: StepTask) -> StepOutcome:
    """Ray task entry point: run one step with the run's environment applied while it
    runs (a Ray worker serves many runs, so nothing stays behind)."""
    saved = dict(os.environ)
    os.environ.update(task.environment or {})
    try:
        return run_in_worker(replace(task, environment=None))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _step_environment(settings: Settings) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in _MACHINE and not key.startswith("RAY_")
    }
    environment.update(
        CTLOOP_HOME=str(settings.home),
        CTLOOP_STORE_URL=settings.store_url,
        CTLOOP_ARTIFACT_URL=settings.artifact_url,
    )
    endpoint = settings.artifact_options.get("endpoint_url")
    if endpoint:
        environment["CTLOOP_S3_ENDPOINT_URL"] = str(endpoint)
    return environment
