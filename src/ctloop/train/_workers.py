"""The tuning workers: worker processes or Ray tasks that each join one shared study.

Each worker loads the study a :class:`StudyPlan` names and runs trials until the study's
``n_trials`` or ``timeout`` is spent (:func:`run_worker`). :class:`StudyWorkers` starts
them on a :class:`ctloop.workers.WorkerPool` (processes of this machine, or Ray tasks),
hands back what each worker's trial function kept, and turns a worker that died into a
:class:`~ctloop.errors.TuningError`. A trial may ask :func:`worker_threads` how many
CPUs it has: workers share the machine.

>>> worker_threads() is None  # not in a tuning worker
True
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctloop.errors import TuningError
from ctloop.workers import ProcessPool, WorkerLostError, WorkerPool, task_cores

if TYPE_CHECKING:
    from ctloop.train._parallel import TrialRunner

__all__ = [
    "StudyPlan",
    "StudyWorkers",
    "in_budget",
    "ray_cpus",
    "run_worker",
    "unsendable",
    "worker_threads",
]

_OVER_BUDGET = "ctloop.over_budget"  # a trial a worker drew after the budget was spent
_DIED = (
    "a tuning worker died while running trials (killed, or out of memory); the other "
    "workers were stopped. Lower n_jobs, or use parallel='threads' to find the trial "
    "that brings its process down"
)


@dataclass(frozen=True)
class StudyPlan:
    """What every worker needs to join the study (picklable).

    >>> plan = StudyPlan("ctloop-1", "/tmp/study.journal", True, "maximize", 0, None, 8, None)
    >>> plan.journal, plan.n_trials
    (True, 8)
    """

    study_name: str
    storage: str  # an RDB URL, or the path of a journal file when ``journal``
    journal: bool
    direction: str
    seed: int | None
    pruner: Any
    n_trials: int | None
    timeout: float | None  # seconds from the start of the study's first trial

    def open_storage(self) -> Any:
        """The study's storage, as Optuna takes it."""
        if not self.journal:
            return self.storage
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(self.storage))


def worker_threads() -> int | None:
    """The CPUs a trial may use in the tuning worker running here: this machine's CPUs
    shared among the worker processes, or a Ray task's one CPU; ``None`` elsewhere.

    >>> worker_threads() is None
    True
    """
    return task_cores()


def run_worker(plan: StudyPlan, runner: TrialRunner, index: int) -> Any:
    """Join the study ``plan`` names, run trials until its trials or time are spent,
    and give back what the trial function kept (the task each pool worker runs).

    >>> run_worker(plan, runner, index=0)  # doctest: +SKIP
    """
    return _run_share(plan, runner, index)


def _run_share(plan: StudyPlan, runner: TrialRunner, index: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    seed = None if plan.seed is None else plan.seed + index
    study = optuna.load_study(
        study_name=plan.study_name,
        storage=plan.open_storage(),
        # constant_liar: a running trial counts as a poor one, so workers spread out
        sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=True),
        pruner=plan.pruner,
    )
    study.optimize(_Budget(runner, plan.n_trials, plan.timeout), catch=(Exception,))
    return runner.kept()


class _OverBudget(Exception):
    pass


class _Budget:
    """Stops a worker at its first trial past the study's budget: numbered ``n_trials`` or
    more (the storage numbers trials one by one, so no two workers overspend together),
    or started ``timeout`` seconds after the study's first trial (the same clock for
    every worker; their start-up is not counted). That trial is dropped."""

    def __init__(self, runner: TrialRunner, n_trials: int | None, timeout: float | None) -> None:
        self.runner, self.n_trials, self.timeout = runner, n_trials, timeout
        self.started: float | None = None

    def __call__(self, trial: Any) -> float:
        if self._spent(trial):
            trial.set_user_attr(_OVER_BUDGET, True)
            trial.study.stop()
            raise _OverBudget(f"trial {trial.number} is over the study's budget")
        return self.runner(trial)

    def _spent(self, trial: Any) -> bool:
        if self.n_trials is not None and trial.number >= self.n_trials:
            return True
        if self.timeout is None:
            return False
        if self.started is None:  # trial 0 exists: this trial was numbered after it
            first = trial.study.get_trials(deepcopy=False)[0]
            self.started = first.datetime_start.timestamp()
        return time.time() - self.started > self.timeout


def in_budget(frozen: Any) -> bool:
    """Whether a trial of the study counts: not one a worker drew past the budget.

    >>> import optuna
    >>> in_budget(optuna.trial.create_trial(value=1.0))
    True
    """
    return not frozen.user_attrs.get(_OVER_BUDGET, False)


def unsendable(describe: str, where: str, exc: Exception) -> str:
    """The sentence saying that ``describe`` cannot be sent to the workers, and the fix.

    >>> unsendable("objective 'f'", "worker processes", TypeError("no")).split(";")[0]
    "objective 'f' cannot be sent to worker processes (TypeError: no)"
    """
    return (
        f"{describe} cannot be sent to {where} ({type(exc).__name__}: {exc}); define it at "
        "module level (a def or a class, not a lambda or a function inside another "
        "function) or use parallel='threads'"
    )


def _worker_failed(exc: BaseException) -> TuningError:
    return TuningError(
        f"a tuning worker failed outside its trials: {type(exc).__name__}: {exc}; check "
        "that the workers can import the objective's module and reach the study's storage"
    )


class StudyWorkers:
    """``count`` workers on ``pool``, one study share each; the trial function goes to
    them once (:meth:`~ctloop.workers.WorkerPool.share`), so it must be picklable: defined
    at module level. Default pool: ``count`` processes of this machine.

    >>> workers = StudyWorkers(plan, runner, 2, "objective 'f'")  # doctest: +SKIP
    >>> while not workers.wait(0.2): ...  # doctest: +SKIP
    >>> workers.close(cancel=False); workers.results  # doctest: +SKIP
    """

    def __init__(
        self,
        plan: StudyPlan,
        runner: TrialRunner,
        count: int,
        describe: str,
        pool: WorkerPool | None = None,
    ) -> None:
        self._pool = pool or ProcessPool(count)
        try:
            shared = self._pool.share(runner)
        except Exception as exc:
            self._pool.shutdown()
            raise TuningError(unsendable(describe, f"a {self._pool.worker}", exc)) from exc
        arguments = [(plan, shared, index) for index in range(count)]
        self._pending: set[Future[Any]] = set(self._pool.map(run_worker, arguments))
        self.results: list[Any] = []

    def wait(self, timeout: float) -> bool:
        """Collect the workers that finished within ``timeout``; whether all have."""
        done, self._pending = wait(self._pending, timeout=timeout, return_when=FIRST_EXCEPTION)
        for future in done:
            try:
                self.results.append(future.result())
            except WorkerLostError as exc:
                raise TuningError(f"{_DIED} ({type(exc.__cause__).__name__})") from exc
            except Exception as exc:
                raise _worker_failed(exc) from exc
        return not self._pending

    def close(self, *, cancel: bool) -> None:
        """Release the pool (``cancel``: stop workers still running)."""
        self._pool.shutdown(cancel=cancel)


def ray_cpus(plan: StudyPlan | None) -> int:
    """Connect to Ray; its number of CPUs. Refuses a journal file on several machines.

    >>> ray_cpus(None)  # doctest: +SKIP
    8
    """
    from ctloop.workers import connect_ray

    connect_ray()
    import ray

    machines = [node for node in ray.nodes() if node.get("Alive")]
    if plan is not None and plan.journal and len(machines) > 1:
        raise TuningError(
            f"the Ray cluster has {len(machines)} machines, which cannot share a study "
            "through a local file; pass storage='postgresql+psycopg://…' (an Optuna RDB "
            "URL that every machine reaches)"
        )
    return max(1, int(ray.cluster_resources().get("CPU", 1)))
