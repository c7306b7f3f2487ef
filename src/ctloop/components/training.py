"""Training steps: ``fit`` and ``tune``, thin bindings of :mod:`ctloop.train`.

A step parameter cannot be an estimator object, so both steps name the estimator by its
class path plus constructor parameters (``estimator="xgboost.XGBClassifier"``,
``params={"max_depth": 4}``). For an estimator built in code, call
:func:`ctloop.train.fit` from your own step (see :func:`make_fit_step`).

``fit`` checkpoints XGBoost and LightGBM boosters every ``checkpoint_every`` rounds in the
artifact store (:mod:`ctloop.pipeline._checkpoints`): if the process dies,
``ctloop resume RUN`` continues from the last checkpoint. ``tune`` records every trial as
a child execution of the run, named ``<step>/trial-<n>``, with the trial's parameters,
metric ``score`` (and ``intermediate_score`` per reported step) and tags
``ctloop.parent_execution`` and ``ctloop.trial_worker`` (``host:pid`` that ran it).
Trial status: ``succeeded``; ``failed`` (with the error); ``skipped`` for a trial the
pruner stopped (tag ``ctloop.trial_state=pruned``).

``tune`` runs ``n_jobs`` trials at a time where ``parallel`` says; ``auto`` follows the
run's executor: ``local`` → threads of the step's process, ``process`` → worker processes,
``ray`` → Ray tasks. With ``n_jobs=1`` trials stay in the step's process. Trials are
recorded by the step's process as they finish, wherever they ran; param ``parallel`` of
the step says where that was.

>>> from ctloop import pipeline
>>> from ctloop.components import fit, tune
>>> @pipeline
... def train_flights(path: str = "flights.parquet"):
...     train, valid = split(load(path))  # doctest: +SKIP
...     best_params, model = tune(train, valid, label="late",  # doctest: +SKIP
...         estimator="xgboost.XGBClassifier",
...         space={"max_depth": {"int": [2, 8]}, "learning_rate": {"float": [0.01, 0.3], "log": True}},
...         n_trials=30)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ctloop.components._features import feature_service_of
from ctloop.errors import ParameterError
from ctloop.pipeline import FilePath, step
from ctloop.pipeline.tracking import (
    PARENT_EXECUTION_TAG,
    ChildExecutions,
    child_executions,
    current_execution,
    current_executor,
    track_metric,
    track_param,
)
from ctloop.store.records import utcnow as _utcnow
from ctloop.store.statuses import ExecutionStatus
from ctloop.train import SearchSpace, Trial
from ctloop.train import fit as fit_estimator
from ctloop.train import tune as tune_estimator

if TYPE_CHECKING:
    from ctloop.artifacts.model import Model
    from ctloop.pipeline._checkpoints import StepCheckpoints

__all__ = ["fit", "make_estimator", "make_fit_step", "tune"]

PARENT_TAG = PARENT_EXECUTION_TAG
TRIAL_STATUS = {
    "complete": ExecutionStatus.SUCCEEDED,
    "failed": ExecutionStatus.FAILED,
    "pruned": ExecutionStatus.SKIPPED,
}
PARALLEL_OF_EXECUTOR = {"local": "threads", "process": "processes", "ray": "ray"}


@step
def fit(
    data: Any,
    label: str,
    estimator: str,
    params: dict[str, Any] | None = None,
    features: list[str] | None = None,
    task: str | None = None,
    eval_data: Any = None,
    checkpoint_every: int = 10,
) -> Model:
    """Fit ``estimator`` (a class path) with ``params`` on ``data``; log training metrics.

    >>> fit(data, label="late", estimator="sklearn.ensemble.HistGradientBoostingClassifier",
    ...     params={"max_iter": 200})  # doctest: +SKIP
    """
    made = make_estimator(estimator, params)
    checkpoints = _step_checkpoints()
    result = fit_estimator(
        made,
        data,
        label,
        features=features,
        task=task,
        eval_data=eval_data,
        checkpoints=checkpoints,
        checkpoint_every=checkpoint_every,
        metadata={"estimator": estimator, **feature_service_of(data)},
    )
    track_metric("resumed_from", result.resumed_from)
    for key, value in result.metrics.items():
        track_metric(key, value)
    if checkpoints is not None:
        checkpoints.clear()  # the model is the step's output now
    return result.model


@step(outputs=("best_params", "model"))
def tune(
    train: Any,
    valid: Any,
    label: str,
    estimator: str,
    space: dict[str, Any] | None = None,
    space_path: FilePath | None = None,
    params: dict[str, Any] | None = None,
    metric: str | None = None,
    direction: str | None = None,
    n_trials: int = 20,
    timeout: float | None = None,
    pruner: str = "median",
    n_jobs: int = 1,
    seed: int = 0,
    features: list[str] | None = None,
    task: str | None = None,
    parallel: str = "auto",
) -> tuple[dict[str, Any], Model]:
    """Tune ``estimator`` (a class path, fixed ``params``) over ``space`` (a dict) or
    ``space_path`` (a YAML file); outputs the best parameters and the best model.
    ``parallel``: ``auto`` (the run's executor), ``threads``, ``processes`` or ``ray``.

    >>> best_params, model = tune(train, valid, label="late", estimator="xgboost.XGBClassifier",
    ...     space_path="space.yaml", n_trials=50, timeout=600)  # doctest: +SKIP
    """
    chosen = _space(space, space_path)
    base = make_estimator(estimator, params)
    recorder = _TrialRecorder.for_running_step()
    parallel = _parallel(parallel, n_jobs)
    track_param("parallel", parallel)
    result = tune_estimator(
        base,
        train,
        valid,
        label,
        chosen,
        features=features,
        task=task,
        metric=metric,
        direction=direction,
        n_trials=n_trials,
        timeout=timeout,
        pruner=pruner,
        n_jobs=n_jobs,
        seed=seed,
        on_trial=recorder,
        parallel=parallel,
    )
    track_metric(f"best_{result.metric}", result.best_score)
    track_metric("trials", len(result.trials))
    track_metric("trials_pruned", len(result.pruned))
    for key, value in result.best_params.items():
        track_param(f"best.{key}", value)
    assert result.best_model is not None
    return dict(result.best_params), result.best_model


def make_estimator(path: str, params: dict[str, Any] | None = None) -> Any:
    """An estimator of the class at ``path`` (``module.Class``) made with ``params``.

    >>> make_estimator("sklearn.linear_model.LogisticRegression", {"C": 0.5}).C
    0.5
    """
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name) if module_name else None
    except (ImportError, AttributeError) as exc:
        raise ParameterError(
            f"estimator {path!r} cannot be imported ({exc}); give the class path of an "
            "installed estimator, e.g. 'sklearn.ensemble.HistGradientBoostingClassifier'"
        ) from exc
    if not isinstance(cls, type) or not hasattr(cls, "fit") or not hasattr(cls, "get_params"):
        raise ParameterError(
            f"estimator {path!r} is not an estimator class (one with fit and get_params); "
            "give a class path such as 'xgboost.XGBClassifier'"
        )
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise ParameterError(f"estimator {path!r} rejects params {params!r}: {exc}") from exc


def make_fit_step(factory: Callable[..., Any], *, name: str) -> Any:
    """A step fitting the estimator ``factory(**params)`` builds, for estimators made in
    code (a scikit-learn ``Pipeline``, a wrapped model). Assign it to a module-level name
    equal to ``name`` so worker processes can import it. The step's cache key cannot see
    the factory's code, so it is not cached (``cache=False``).

    >>> fit_svc = make_fit_step(lambda **p: make_pipeline(StandardScaler(), SVC(**p)),
    ...                         name="fit_svc")  # doctest: +SKIP
    >>> fit_svc(data, label="late", params={"C": 2.0})  # doctest: +SKIP
    """

    def fit_with_factory(data: Any, label: str, params: dict[str, Any] | None = None) -> Any:
        result = fit_estimator(factory(**(params or {})), data, label)
        for key, value in result.metrics.items():
            track_metric(key, value)
        return result.model

    fit_with_factory.__name__ = fit_with_factory.__qualname__ = name
    fit_with_factory.__module__ = getattr(factory, "__module__", __name__)
    return step(name=name, cache=False)(fit_with_factory)


# -- trials as child executions --------------------------------------------------------


class _TrialRecorder:
    """Writes each finished trial as a child execution of the running step."""

    def __init__(self, children: ChildExecutions | None) -> None:
        self.children = children

    @classmethod
    def for_running_step(cls) -> _TrialRecorder:
        if current_execution() is None:
            return cls(None)  # called as a plain function: nothing to record
        return cls(child_executions())

    def __call__(self, trial: Trial) -> None:
        if self.children is None:
            return
        ended = _utcnow()
        self.children.record(
            f"trial-{trial.number}",
            function=f"{__name__}.tune",
            status=TRIAL_STATUS.get(trial.state, ExecutionStatus.FAILED),
            started_at=ended - timedelta(seconds=trial.duration),
            ended_at=ended,
            parameters=dict(trial.params),
            metrics=_trial_metrics(trial),
            tags=_trial_tags(trial),
            error=trial.error or (_pruned_at(trial) if trial.state == "pruned" else None),
        )


def _trial_metrics(trial: Trial) -> list[tuple[str, float, int | None]]:
    metrics: list[tuple[str, float, int | None]] = [
        ("intermediate_score", value, step) for step, value in sorted(trial.intermediate.items())
    ]
    if trial.score is not None:
        metrics.append(("score", trial.score, None))
    return metrics


def _trial_tags(trial: Trial) -> dict[str, str]:
    tags = {"ctloop.trial_number": str(trial.number), "ctloop.trial_state": trial.state}
    if trial.worker:
        tags["ctloop.trial_worker"] = trial.worker
    return tags


def _pruned_at(trial: Trial) -> str:
    last = max(trial.intermediate) if trial.intermediate else 0
    return f"pruned at step {last}"


# -- helpers ---------------------------------------------------------------------------


def _space(space: dict[str, Any] | None, space_path: FilePath | None) -> SearchSpace:
    if (space is None) == (space_path is None):
        raise ParameterError(
            "tune needs exactly one search space: pass space={...} or space_path='space.yaml'"
        )
    return SearchSpace.parse(space if space is not None else space_path)  # type: ignore[arg-type]


def _parallel(parallel: str, n_jobs: int) -> str:
    """Where trials run: ``auto`` follows the run's executor when trials run side by side."""
    if parallel != "auto":
        return parallel
    if n_jobs == 1:
        return "threads"  # one trial at a time: no worker is worth its start-up
    return PARALLEL_OF_EXECUTOR.get(current_executor() or "local", "threads")


def _step_checkpoints() -> StepCheckpoints | None:
    if current_execution() is None:
        return None  # called as a plain function: no step to checkpoint
    from ctloop.pipeline._checkpoints import current_checkpoints

    return current_checkpoints()
