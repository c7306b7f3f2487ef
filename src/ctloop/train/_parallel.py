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
CPUs: a worker process gets ``cores // n_jobs`` threads (the cores this process was
given, :func:`ctloop.train._threads.cpu_budget`), a Ray task one CPU, and an
estimator left to take every CPU (``n_jobs=None``) is given that share. A worker that
dies (killed, out of memory) stops the others and fails the study with a
:class:`~ctloop.errors.TuningError`; the trial it was running is recorded as failed.
The workers themselves are in :mod:`ctloop.train._workers`, on a
:class:`ctloop.workers.WorkerPool`.

>>> runner = TrialRunner(lambda params, reporter: params["x"], SearchSpace.parse(
...     {"x": {"int": [0, 4]}}))
>>> outcome = run_study(runner, StudySettings(n_trials=6, seed=1))
>>> len(outcome.trials), all(0 <= t.value <= 4 for t in outcome.trials)
(6, True)
"""

from __future__ import annotations

import copy
import os
import socket
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ctloop.errors import TuningError
from ctloop.train._space import SearchSpace
from ctloop.train._threads import cpu_budget, thread_limits
from ctloop.train._workers import (
    StudyPlan,
    StudyWorkers,
    in_budget,
    ray_cpus,
    run_worker,
    worker_threads,
)
from ctloop.workers import ProcessPool, WorkerPool

__all__ = [
    "PARALLEL",
    "WORKER",
    "Objective",
    "StudyOutcome",
    "StudyPlan",
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
_POLL_S = 0.2


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

    def report(self, value: float, step: int, *, prune: bool = True) -> None:
        """Record ``value`` at ``step``; raise :class:`TrialPruned` if the pruner says stop.
        ``prune=False`` records without asking the pruner (the trial's last step, say: a
        finished training is worth its score).

        >>> reporter.report(0.81, step=20)  # doctest: +SKIP
        """
        self._trial.report(float(value), step)
        if prune and self._trial.should_prune():
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
    with thread_limits():  # the trials' native pools stay within this process's cores
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
        kept = _drive(
            StudyWorkers(plan, runner, count, describe, _pool(settings, plan, count)),
            study,
            on_finished,
        )
        trials = [t for t in study.get_trials(deepcopy=False) if in_budget(t)]
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


def _pool(settings: StudySettings, plan: StudyPlan, count: int) -> WorkerPool:
    """``count`` worker processes, or Ray tasks of one CPU each."""
    if settings.parallel == "processes":
        return ProcessPool(count, cores=max(1, cpu_budget() // count))
    ray_cpus(plan)  # first: it explains a missing Ray, or a journal on several machines
    from ctloop.workers import RayPool

    return RayPool(cores=1)


def _new_name() -> str:
    return f"ctloop-{uuid.uuid4().hex[:12]}"


def _worker_count(settings: StudySettings) -> int:
    count = settings.n_jobs
    if count == -1 and settings.parallel == "ray":
        count = ray_cpus(None)
    elif count == -1:
        count = cpu_budget()
    return max(1, min(count, settings.n_trials or count))


def _drive(
    workers: StudyWorkers,
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
        if frozen.number in reported or not in_budget(frozen):
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
