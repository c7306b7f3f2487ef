"""Executors: where steps run. ``local`` runs them one by one in this process, on the
run's workspace object; ``process`` runs independent steps in parallel in a pool of
worker processes; ``ray`` runs them as Ray tasks (:mod:`ctloop.pipeline.ray_executor`,
imported when chosen). Workers reopen the run's workspace from its URLs, so an
in-memory workspace runs on ``local`` only (:func:`check_executor_reaches`).

Error contract: ``submit`` never raises for a step's own failure — the returned future
resolves to a failed :class:`~ctloop.pipeline.worker.StepOutcome`; a worker that dies
makes the future raise ``BrokenProcessPool`` (process pool) or resolve to a failed
outcome (Ray), which the runner records as a failure.
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

from ctloop.errors import ConfigError, PipelineError
from ctloop.pipeline.dsl import Step
from ctloop.pipeline.worker import StepOutcome, StepTask, run_in_worker, run_step

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.store.workspace import Workspace


class Executor(ABC):
    """Runs step tasks."""

    @abstractmethod
    def submit(self, task: StepTask, step_obj: Step) -> Future[StepOutcome]:
        """Start running a step; the future resolves to its outcome."""

    def shutdown(self, *, cancel: bool = False) -> None:
        """Release workers (``cancel`` drops tasks not yet started); none by default."""
        return None


class LocalExecutor(Executor):
    """Runs each step synchronously in the calling process, on ``workspace``."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def submit(self, task: StepTask, step_obj: Step) -> Future[StepOutcome]:
        future: Future[StepOutcome] = Future()
        future.set_result(run_step(task, step_obj, self.workspace))
        return future


class ProcessExecutor(Executor):
    """Runs steps in a pool of worker processes (forkserver on Linux)."""

    def __init__(self, max_workers: int | None = None) -> None:
        method = (
            "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
        )
        context = multiprocessing.get_context(method)
        workers = max_workers or max(1, min(os.cpu_count() or 1, 8))
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)

    def submit(self, task: StepTask, step_obj: Step) -> Future[StepOutcome]:
        return self._pool.submit(run_in_worker, replace(task, environment=dict(os.environ)))

    def shutdown(self, *, cancel: bool = False) -> None:
        if cancel:  # an interrupted run: stop steps in flight instead of waiting for them
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=cancel)


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
    from ctloop.pipeline.ray_executor import RayExecutor

    return RayExecutor(settings)
