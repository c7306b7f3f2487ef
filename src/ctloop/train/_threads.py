"""Native thread pools held to the cores a fit or a prediction was given.

LightGBM and XGBoost left to their defaults start one OpenMP thread per CPU of the
machine, whatever else runs on it; two such fits on two busy cores spin on each other and
run tens of times slower. Every fit, tuning trial and scoring in ctloop runs inside
:func:`thread_budget`: the process's native pools (OpenMP, BLAS) are limited with
threadpoolctl, and the estimator's own thread setting (``n_jobs``, LightGBM's
``num_threads``) is held to the budget while it runs, then given back as the user set it.

The budget is, first found: the cores passed in; the cores a worker pool gave the task
running here; ``CTLOOP_CORES`` (the scheduler sets it for its runs); the CPUs this process
may run on.

>>> from sklearn.neighbors import KNeighborsClassifier
>>> with thread_budget(KNeighborsClassifier(n_jobs=-1), cores=1) as estimator:
...     estimator.n_jobs
1
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ctloop.errors import TrainingError
from ctloop.workers import task_cores

__all__ = ["CORES_VARIABLE", "cpu_budget", "held_threads", "thread_budget", "thread_limits"]

#: the environment variable that gives a process its cores (the scheduler sets it)
CORES_VARIABLE = "CTLOOP_CORES"
#: estimator parameters that set a library's own thread count
_THREAD_PARAMS = ("n_jobs", "num_threads", "nthread")
# threadpoolctl's limits are the process's: with fits in several threads, the first to
# start sets them and the last to end restores them (nested restores in another order
# would leave a stale limit behind)
_lock = threading.Lock()
_holders = 0
_limiter: Any = None


def cpu_budget(cores: int | None = None) -> int:
    """The cores this process's fits and predictions may use (at least 1).

    >>> cpu_budget(3)
    3
    """
    if cores is not None:
        if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
            raise TrainingError(f"cores is {cores!r}; give a whole number of CPUs, 1 or more")
        return cores
    given = task_cores()
    if given is not None:
        return max(1, given)
    variable = os.environ.get(CORES_VARIABLE, "").strip()
    if variable:
        if not variable.isdigit() or int(variable) < 1:
            raise TrainingError(
                f"{CORES_VARIABLE}={variable!r} is not a number of CPUs; set it to 1 or more"
            )
        return int(variable)
    return _available_cpus()


def _available_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows: no affinity mask
        return os.cpu_count() or 1


@contextmanager
def thread_limits(cores: int | None = None) -> Iterator[int]:
    """Limit the process's native thread pools (OpenMP, BLAS) to ``cores`` (default:
    :func:`cpu_budget`) while the block runs; gives the number of cores.

    >>> with thread_limits(1) as cores:
    ...     cores
    1
    """
    global _holders, _limiter
    budget = cpu_budget(cores)
    from threadpoolctl import threadpool_limits

    with _lock:
        if _holders == 0:
            _limiter = threadpool_limits(limits=budget)
        _holders += 1
    try:
        yield budget
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                _limiter.restore_original_limits()
                _limiter = None


@contextmanager
def thread_budget(estimator: Any, cores: int | None = None) -> Iterator[Any]:
    """Run the block with ``estimator`` (and the native pools) held to ``cores`` threads.

    A thread setting left unset (LightGBM and XGBoost then take every CPU), set to every
    CPU (``-1``) or above the budget becomes the budget; a lower one is kept. The estimator's
    settings are given back afterwards, so the fitted model keeps the user's own.
    """
    with thread_limits(cores) as budget, held_threads(estimator, budget):
        yield estimator


@contextmanager
def held_threads(estimator: Any, cores: int | None = None) -> Iterator[Any]:
    """:func:`thread_budget` for the estimator's own thread setting only (trials running
    in threads of one process share its native pools' limits).

    >>> from sklearn.ensemble import RandomForestClassifier
    >>> with held_threads(RandomForestClassifier(n_jobs=8), cores=2) as forest:
    ...     forest.n_jobs
    2
    """
    changed = _hold_threads(estimator, cpu_budget(cores))
    try:
        yield estimator
    finally:
        if changed:
            estimator.set_params(**changed)


def _hold_threads(estimator: Any, budget: int) -> dict[str, Any]:
    """Set the thread parameters of ``estimator`` (nested ones too) to the budget; return
    the previous values of those it changed."""
    if not hasattr(estimator, "get_params") or not hasattr(estimator, "set_params"):
        return {}
    try:
        params = estimator.get_params(deep=True)
    except Exception:  # an estimator whose get_params cannot run: leave it be
        return {}
    previous: dict[str, Any] = {}
    for key, value in params.items():
        owner_key, _, name = key.rpartition("__")
        if name not in _THREAD_PARAMS:
            continue
        owner = params.get(owner_key, estimator) if owner_key else estimator
        if _over_budget(owner, value, budget):
            previous[key] = value
    if previous:
        estimator.set_params(**dict.fromkeys(previous, budget))
    return previous


def _over_budget(owner: Any, value: Any, budget: int) -> bool:
    if value is None:  # LightGBM, XGBoost: every CPU; scikit-learn's own: one, kept
        return type(owner).__module__.split(".")[0] != "sklearn"
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return value <= 0 or value > budget
