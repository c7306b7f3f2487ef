"""Where the trials of a tuning study run: threads, worker processes, or Ray tasks.

``threads`` (the default) is Optuna's own ``n_jobs``: trials share this process. With
``processes`` or ``ray``, ``n_jobs`` workers each load the same study from storage that
several processes can share: an Optuna journal file in a temporary folder, or the Optuna
RDB URL given as ``storage=`` (needed on a Ray cluster of several machines). So the TPE
sampler and the pruner see every worker's trials. The trial function, with its training
data, goes to each worker once (for Ray through the object store); trial numbers come
from the study, and ``n_trials`` and ``timeout`` hold for the study as a whole (the
timeout counts from the first trial's start, so workers' start-up is not in it). This
process hands each finished trial to ``on_finished`` as it finishes. Workers share the
CPUs: a worker process gets ``cpu_count // n_jobs`` threads, a Ray task one CPU, and an
estimator left to take every CPU (``n_jobs=None``) is given that share. A worker that
dies (killed, out of memory) stops the others and fails the study with a
:class:`~ctloop.errors.TuningError`; the trial it was running is recorded as failed.

>>> runner = TrialRunner(lambda params, reporter: params["x"], SearchSpace.parse(
...     {"x": {"int": [0, 4]}}))
>>> outcome = run_study(runner, StudySettings(n_trials=6, seed=1))
>>> len(outcome.trials), all(0 <= t.value <= 4 for t in outcome.trials)
(6, True)
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import pickle
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from ctloop.errors import TuningError
from ctloop.train.space import SearchSpace

__all__ = [
    "PARALLEL",
    "WORKER",
    "Objective",
    "StudyOutcome",
    "StudySettings",
    "TrialPruned",
    "TrialReporter",
    "TrialRunner",
    "run_study",
    "run_worker",
    "worker_threads",
]

PARALLEL = ("threads", "processes", "ray")
WORKER = "ctloop.worker"  # the trial's user attribute naming the process that ran it
_OVER_BUDGET = "ctloop.over_budget"  # a trial a worker drew after the budget was spent
_POLL_S = 0.2
_DIED = (
    "a tuning worker died while running trials (killed, or out of memory); the other "
    "workers were stopped. Lower n_jobs, or use parallel='threads' to find the trial "
    "that brings its process down"
)


class TrialPruned(Exception):
    """Raised by :meth:`TrialReporter.report` when the pruner stops the trial."""


class TrialReporter:
    """Given to an objective: report intermediate scores so the pruner can stop the trial."""

    def __init__(self, trial: Any) -> None:
        self._trial = trial

    @property
    def number(self) -> int:
        """The trial's number (0, 1, …)."""
        return int(self._trial.number)

    def report(self, value: float, step: int) -> None:
        """Record ``value`` at ``step``; raise :class:`TrialPruned` if the pruner says stop."""
        self._trial.report(float(value), step)
        if self._trial.should_prune():
            raise TrialPruned(f"trial {self.number} pruned at step {step}")


Objective = Callable[[dict[str, Any], TrialReporter], float]


class TrialRunner:
    """Runs one Optuna trial of ``objective(params, reporter) -> score`` over ``space``.

    Picklable when the objective is, so that worker processes can run it. An objective
    with a ``kept()`` method (the best fitted estimator it saw) has it read at the end.

    >>> TrialRunner(lambda p, r: 1.0, SearchSpace.parse({"n": 3})).kept() is None
    True
    """

    def __init__(self, objective: Objective, space: SearchSpace) -> None:
        self.objective, self.space = objective, space

    def __call__(self, trial: Any) -> float:
        import optuna

        trial.set_user_attr(WORKER, f"{socket.gethostname()}:{os.getpid()}")
        params = self.space.sample(trial)
        try:
            return float(self.objective(params, TrialReporter(trial)))
        except TrialPruned as exc:
            raise optuna.TrialPruned(str(exc)) from exc
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise

    def kept(self) -> Any:
        """What the objective kept from its trials (its ``kept()``), or ``None``."""
        kept = getattr(self.objective, "kept", None)
        return kept() if callable(kept) else None


@dataclass(frozen=True)
class StudySettings:
    """How a study runs: its direction, budget, pruner (an Optuna pruner), workers."""

    direction: str = "maximize"
    n_trials: int | None = 20
    timeout: float | None = None
    pruner: Any = None
    n_jobs: int = 1
    seed: int | None = 0
    storage: str | None = None
    parallel: str = "threads"


@dataclass(frozen=True)
class StudyOutcome:
    """The finished trials (Optuna ``FrozenTrial``, by number) and what each worker kept."""

    trials: list[Any]
    kept: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class StudyPlan:
    """What every worker needs to join the study (picklable)."""

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


def run_study(
    runner: TrialRunner,
    settings: StudySettings,
    *,
    on_finished: Callable[[Any], None] | None = None,
    describe: str = "the objective",
) -> StudyOutcome:
    """Run the trials of a new study as ``settings.parallel`` says; ``describe`` names the
    objective in the error raised when it cannot be sent to workers."""
    if settings.parallel not in PARALLEL:
        raise TuningError(
            f"parallel={settings.parallel!r} is unknown; use one of {', '.join(PARALLEL)}"
        )
    if settings.parallel == "threads":
        return _run_in_threads(runner, settings, on_finished)
    return _run_in_workers(runner, settings, on_finished, describe)


def _run_in_threads(
    runner: TrialRunner, settings: StudySettings, on_finished: Callable[[Any], None] | None
) -> StudyOutcome:
    import optuna

    study = optuna.create_study(
        storage=settings.storage,
        study_name=_new_name() if settings.storage else None,
        direction=settings.direction,  # type: ignore[arg-type]  # checked by the caller
        sampler=optuna.samplers.TPESampler(seed=settings.seed),
        pruner=settings.pruner,
    )
    callbacks = [] if on_finished is None else [lambda _study, frozen: on_finished(frozen)]
    study.optimize(
        runner,
        n_trials=settings.n_trials,
        timeout=settings.timeout,
        n_jobs=settings.n_jobs,
        catch=(Exception,),
        callbacks=callbacks,
    )
    kept = runner.kept()
    return StudyOutcome(list(study.trials), [] if kept is None else [kept])


def _run_in_workers(
    runner: TrialRunner,
    settings: StudySettings,
    on_finished: Callable[[Any], None] | None,
    describe: str,
) -> StudyOutcome:
    import optuna

    count = _worker_count(settings)
    with tempfile.TemporaryDirectory(prefix="ctloop-study-") as folder:
        plan = _plan(settings, folder)
        study = optuna.create_study(
            storage=plan.open_storage(),
            study_name=plan.study_name,
            direction=plan.direction,  # type: ignore[arg-type]  # checked by the caller
        )
        workers: _ProcessWorkers | _RayWorkers
        if settings.parallel == "processes":
            workers = _ProcessWorkers(plan, _pickled(runner, describe), count)
        else:
            workers = _RayWorkers(plan, runner, count, describe)
        kept = _drive(workers, study, on_finished)
        trials = [t for t in study.get_trials(deepcopy=False) if _in_budget(t)]
    return StudyOutcome(trials, [k for k in kept if k is not None])


def _plan(settings: StudySettings, folder: str) -> StudyPlan:
    journal = settings.storage is None
    return StudyPlan(
        study_name=_new_name(),
        storage=os.path.join(folder, "study.journal") if journal else str(settings.storage),
        journal=journal,
        direction=settings.direction,
        seed=settings.seed,
        pruner=settings.pruner,
        n_trials=settings.n_trials,
        timeout=settings.timeout,
    )


def _new_name() -> str:
    return f"ctloop-{uuid.uuid4().hex[:12]}"


def _worker_count(settings: StudySettings) -> int:
    count = settings.n_jobs
    if count == -1 and settings.parallel == "ray":
        count = _ray_cluster(None)
    elif count == -1:
        count = os.cpu_count() or 1
    return max(1, min(count, settings.n_trials or count))


# -- the workers' side -----------------------------------------------------------------


_threads: int | None = None


def worker_threads() -> int | None:
    """The CPUs a trial may use in the tuning worker running here: this machine's CPUs
    shared among the worker processes, or a Ray task's one CPU; ``None`` elsewhere.

    >>> worker_threads() is None
    True
    """
    return _threads


def run_worker(plan: StudyPlan, runner: TrialRunner, index: int, threads: int) -> Any:
    """Join the study ``plan`` names, run trials until its trials or time are spent,
    and give back what the trial function kept (the entry point of a worker process or
    Ray task)."""
    global _threads
    _threads = threads
    try:
        return _run_share(plan, runner, index)
    finally:
        _threads = None


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


def _process_worker(plan: StudyPlan, blob: bytes, index: int, threads: int) -> Any:
    from threadpoolctl import threadpool_limits

    runner = pickle.loads(blob)  # imports the estimator's libraries: limit them after
    with threadpool_limits(limits=threads):  # workers share the CPUs, as Ray's tasks do
        return run_worker(plan, runner, index, threads)


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


# -- this process's side ---------------------------------------------------------------


def _drive(
    workers: _ProcessWorkers | _RayWorkers,
    study: Any,
    on_finished: Callable[[Any], None] | None,
) -> list[Any]:
    """Wait for the workers, reporting finished trials as they appear in the study; what
    each worker kept."""
    reported: set[int] = set()
    try:
        while not workers.wait(_POLL_S):
            _report(study, reported, on_finished)
    except BaseException:
        workers.close(cancel=True)
        orphans = _fail_running(study)
        _report(study, reported, on_finished, orphans)
        raise
    workers.close(cancel=False)
    _report(study, reported, on_finished)
    return workers.results


def _report(
    study: Any,
    reported: set[int],
    on_finished: Callable[[Any], None] | None,
    orphans: frozenset[int] = frozenset(),
) -> None:
    from optuna.trial import TrialState

    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    for frozen in study.get_trials(deepcopy=False, states=finished):
        if frozen.number in reported or not _in_budget(frozen):
            continue
        reported.add(frozen.number)
        if frozen.number in orphans and "error" not in frozen.user_attrs:
            frozen = copy.deepcopy(frozen)
            frozen.set_user_attr("error", "its worker stopped before the trial finished")
        if on_finished is not None:
            on_finished(frozen)


def _fail_running(study: Any) -> frozenset[int]:
    """Mark the trials of stopped workers failed; their numbers."""
    from optuna.trial import TrialState

    numbers = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
        numbers.append(frozen.number)
    return frozenset(numbers)


def _in_budget(frozen: Any) -> bool:
    return not frozen.user_attrs.get(_OVER_BUDGET, False)


def _pickled(runner: TrialRunner, describe: str) -> bytes:
    try:
        return pickle.dumps(runner, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise TuningError(_unsendable(describe, "worker processes", exc)) from exc


def _unsendable(describe: str, where: str, exc: Exception) -> str:
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


class _ProcessWorkers:
    """``count`` worker processes (forkserver on Linux), one study share each."""

    def __init__(self, plan: StudyPlan, blob: bytes, count: int) -> None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        self._pool = ProcessPoolExecutor(max_workers=count, mp_context=context)
        threads = max(1, (os.cpu_count() or 1) // count)
        self._pending: set[Future[Any]] = {
            self._pool.submit(_process_worker, plan, blob, index, threads) for index in range(count)
        }
        self.results: list[Any] = []

    def wait(self, timeout: float) -> bool:
        """Collect the workers that finished within ``timeout``; whether all have."""
        done, self._pending = wait(self._pending, timeout=timeout, return_when=FIRST_EXCEPTION)
        for future in done:
            try:
                self.results.append(future.result())
            except BrokenProcessPool as exc:
                raise TuningError(_DIED) from exc
            except Exception as exc:
                raise _worker_failed(exc) from exc
        return not self._pending

    def close(self, *, cancel: bool) -> None:
        """Stop the pool (``cancel``: kill workers still running)."""
        if cancel:
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=cancel)


class _RayWorkers:
    """``count`` Ray tasks; the trial function travels once through the object store."""

    def __init__(self, plan: StudyPlan, runner: TrialRunner, count: int, describe: str) -> None:
        _ray_cluster(plan)  # first: it explains a missing Ray
        import ray

        try:
            payload = ray.put(runner)
        except Exception as exc:
            raise TuningError(_unsendable(describe, "Ray workers", exc)) from exc
        task = ray.remote(run_worker).options(num_cpus=1, max_retries=0)
        self._pending = [task.remote(plan, payload, index, 1) for index in range(count)]
        self.results: list[Any] = []

    def wait(self, timeout: float) -> bool:
        """Collect the tasks that finished within ``timeout``; whether all have."""
        import ray

        ready, self._pending = ray.wait(
            self._pending, num_returns=len(self._pending), timeout=timeout
        )
        for ref in ready:
            try:
                self.results.append(ray.get(ref))
            except ray.exceptions.RayTaskError as exc:
                raise _worker_failed(exc.cause or exc) from exc
            except ray.exceptions.RayError as exc:
                raise TuningError(f"{_DIED} ({type(exc).__name__})") from exc
        return not self._pending

    def close(self, *, cancel: bool) -> None:
        """Cancel the tasks still running (``cancel``)."""
        import ray

        for ref in self._pending if cancel else []:
            ray.cancel(ref, force=True)


def _ray_cluster(plan: StudyPlan | None) -> int:
    """Connect to Ray; its number of CPUs. Refuses a journal file on several machines."""
    from ctloop.config import connect_ray

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
