"""Executors: where steps run, each on a :class:`~ctloop.workers.WorkerPool`. ``local``
runs them one by one in this process, on the run's workspace object; ``process`` runs
independent steps in parallel in a pool of worker processes; ``ray`` runs them as Ray
tasks (:mod:`ctloop.pipeline._ray_executor`, imported when chosen). Workers reopen the
run's workspace from its URLs, so an in-memory workspace runs on ``local`` only
(:func:`check_executor_reaches`).

Error contract: ``submit`` never raises for a step's own failure — the returned future
resolves to a failed :class:`~ctloop.pipeline._worker.StepOutcome`; a worker that dies
resolves it to a failed outcome naming the step, which the runner records.
"""

from __future__ import annotations

import os
import traceback
from concurrent.futures import Future
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ctloop.errors import ConfigError, PipelineError
from ctloop.pipeline._dsl import Step
from ctloop.pipeline._worker import StepOutcome, StepTask, run_in_worker, run_step
from ctloop.store.records import utcnow
from ctloop.store.statuses import ExecutionStatus
from ctloop.workers import (
    InProcessPool,
    ProcessPool,
    WorkerLostError,
    WorkerPool,
    thread_variables,
)

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.store.workspace import Workspace


class Executor:
    """Runs step tasks on ``pool``; subclasses say what a task runs (:meth:`call`)."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def call(self, task: StepTask, step_obj: Step) -> tuple[Any, ...]:
        """The function that runs ``task`` in a worker, and its arguments."""
        return run_in_worker, replace(task, environment=dict(os.environ))

    def submit(self, task: StepTask, step_obj: Step) -> Future[StepOutcome]:
        """Start running a step; the future resolves to its outcome."""
        fn, *args = self.call(task, step_obj)
        outcome: Future[StepOutcome] = Future()
        running = self.pool.submit(fn, *args)
        running.add_done_callback(lambda done: outcome.set_result(self._outcome(task, done)))
        # _outcome never raises: a callback's error would leave ``outcome`` unresolved
        return outcome

    def _outcome(self, task: StepTask, done: Future[StepOutcome]) -> StepOutcome:
        try:
            return done.result()
        except BaseException as exc:  # the worker died, or the task failed around the step
            return failed_outside(task, self.pool.worker, exc)

    def shutdown(self, *, cancel: bool = False) -> None:
        """Release workers (``cancel`` stops steps in flight and drops those not started)."""
        self.pool.shutdown(cancel=cancel)


class LocalExecutor(Executor):
    """Runs each step synchronously in the calling process, on ``workspace``."""

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(InProcessPool())
        self.workspace = workspace

    def submit(self, task: StepTask, step_obj: Step) -> Future[StepOutcome]:
        # an error of the engine itself is the future's, raised to the runner as it is
        return self.pool.submit(run_step, task, step_obj, self.workspace)


class ProcessExecutor(Executor):
    """Runs steps in a pool of worker processes (forkserver on Linux), each step on this
    machine's CPUs shared among the workers."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(ProcessPool(max_workers or max(1, min(os.cpu_count() or 1, 8))))

    def call(self, task: StepTask, step_obj: Step) -> tuple[Any, ...]:
        # this process's environment, with the thread pools held to the step's cores
        environment = {**os.environ, **thread_variables(self.pool.cores)}
        return run_in_worker, replace(task, environment=environment)


def failed_outside(task: StepTask, worker: str, exc: BaseException) -> StepOutcome:
    """The failed outcome of a step whose worker died (``WorkerLostError``) or whose task
    failed around the step."""
    now, cause = utcnow(), exc.__cause__ if isinstance(exc, WorkerLostError) else exc
    if isinstance(exc, WorkerLostError):
        message = f"the {worker} running step '{task.invocation}' died"
        error = f"{message} ({type(cause).__name__})\n{type(cause).__name__}: {cause}"
    else:
        message = f"the task of step '{task.invocation}' failed outside the step: {exc}"
        error = f"{message}\n{''.join(traceback.format_exception(exc))}"
    return StepOutcome(
        task.execution_id,
        ExecutionStatus.FAILED,
        now,
        now,
        error=error,
        error_type=f"{type(cause).__module__}.{type(cause).__qualname__}",
        error_message=message,
    )


EXECUTORS = ("local", "process", "ray")


def check_executor_reaches(name: str, workspace: Workspace) -> None:
    """Refuse an executor whose workers could not reopen ``workspace``: one in memory
    lives in this process only.

    >>> check_executor_reaches("local", workspace)  # doctest: +SKIP
    """
    if name not in EXECUTORS:
        raise ConfigError(f"executor {name!r} is unknown; use 'local', 'process' or 'ray'")
    if name != "local" and (workspace.store_url is None or workspace.artifact_url is None):
        raise PipelineError(
            f"executor {name!r} runs steps in other processes, which cannot reach "
            f"{workspace.location}; use executor='local', or a workspace on a database "
            "and an artifact store (Workspace.open(url, artifacts=...))"
        )


def make_executor(name: str, workspace: Workspace, settings: Settings | None = None) -> Executor:
    """The executor called ``name`` (``local``, ``process`` or ``ray``) for a run on
    ``workspace``; ``settings`` say where Ray is (default: ``Settings.load()``).

    >>> type(make_executor("local", Workspace.in_memory())).__name__  # doctest: +SKIP
    'LocalExecutor'
    """
    check_executor_reaches(name, workspace)
    if name == "local":
        return LocalExecutor(workspace)
    if name == "process":
        return ProcessExecutor()
    from ctloop.pipeline._ray_executor import RayExecutor

    return RayExecutor(settings)
