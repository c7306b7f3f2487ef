"""Hyper-parameter tuning with Optuna: a search space, trials, pruning, the best model.

:func:`tune` searches an estimator's parameters, scoring each trial on validation data;
:func:`optimize` runs a study over any objective ``f(params, reporter) -> score``.

Pruning: an objective reports intermediate scores with ``reporter.report(value, step)``;
Optuna's pruner (``"median"`` by default) stops a trial that does worse than earlier trials
at the same step. :func:`tune` reports by training in stages: XGBoost and LightGBM
continue their booster (``xgb_model=`` / ``init_model=``), scikit-learn estimators with
``warm_start`` grow ``max_iter`` or ``n_estimators``; other estimators fit in one go and
are never pruned.

Parallel trials: ``n_jobs`` trials run at a time, where ``parallel`` says. ``threads``
(the default) are threads of this process (Optuna's own ``n_jobs``): boosting libraries
and scikit-learn release the GIL while they fit. ``processes`` and ``ray`` run
``n_jobs`` workers sharing one study (see :mod:`ctloop.train.parallel`); their objective
must be picklable (defined at module level). With parallel trials the order of trials,
hence the result, may vary even with a seed.

>>> result = optimize(
...     lambda params, reporter: -((params["x"] - 2.0) ** 2),
...     {"x": {"float": [-10.0, 10.0]}}, direction="maximize", n_trials=20, seed=1,
... )
>>> abs(result.best_params["x"] - 2.0) < 2.0
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import TuningError
from ctloop.train.checkpointing import boosting_library
from ctloop.train.fitting import build_model, clone_estimator, split_features
from ctloop.train.parallel import (
    PARALLEL,
    WORKER,
    Objective,
    StudySettings,
    TrialPruned,
    TrialReporter,
    TrialRunner,
    run_study,
    worker_threads,
)
from ctloop.train.space import SearchSpace

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.artifacts.model import Model

DIRECTIONS = ("maximize", "minimize")
_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}


@dataclass(frozen=True)
class Trial:
    """One finished trial: ``state`` is ``complete``, ``pruned`` or ``failed``.

    >>> Trial(0, {"max_depth": 3}, 0.91, "complete", 1.5).score
    0.91
    """

    number: int
    params: dict[str, Any]
    score: float | None
    state: str
    duration: float
    intermediate: dict[int, float] = field(default_factory=dict)
    error: str | None = None
    worker: str | None = None  # "host:pid" of the process that ran it


@dataclass(frozen=True)
class TuneResult:
    """The best parameters and score, every trial, and the best model (from :func:`tune`)."""

    best_params: dict[str, Any]
    best_score: float
    trials: list[Trial]
    metric: str
    direction: str
    best_model: Model | None = None

    @property
    def pruned(self) -> list[Trial]:
        """The trials the pruner stopped."""
        return [t for t in self.trials if t.state == "pruned"]


__all__ = ["Trial", "TrialPruned", "TrialReporter", "TuneResult", "optimize", "staged_fit", "tune"]


def optimize(
    objective: Objective,
    space: SearchSpace | Mapping[str, Any] | str | Path,
    *,
    direction: str = "maximize",
    n_trials: int | None = 20,
    timeout: float | None = None,
    pruner: Any = "median",
    n_jobs: int = 1,
    seed: int | None = 0,
    on_trial: Callable[[Trial], None] | None = None,
    metric: str = "objective",
    parallel: str = "threads",
    storage: str | None = None,
) -> TuneResult:
    """Run an Optuna study of ``objective`` over ``space``; stop after ``n_trials`` or
    ``timeout`` seconds, whichever comes first. ``on_trial`` sees every finished trial, in
    this process. ``n_jobs`` trials run at a time in ``parallel`` ``threads``,
    ``processes`` or ``ray`` workers; ``storage`` (an Optuna RDB URL) keeps the study.

    >>> optimize(lambda p, r: p["n"], {"n": {"int": [1, 3]}}, n_trials=5).best_score
    3.0
    """
    name = getattr(objective, "__qualname__", type(objective).__name__)
    result, _ = _optimize(
        objective,
        space,
        StudySettings(direction, n_trials, timeout, pruner, n_jobs, seed, storage, parallel),
        on_trial,
        metric,
        f"objective {name!r}",
    )
    return result


def _optimize(
    objective: Objective,
    space: SearchSpace | Mapping[str, Any] | str | Path,
    settings: StudySettings,
    on_trial: Callable[[Trial], None] | None,
    metric: str,
    describe: str,
) -> tuple[TuneResult, list[Any]]:
    """The study's result and what the objective kept in each worker."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    parsed = SearchSpace.parse(space)
    _check_settings(settings)
    settings = StudySettings(**{**vars(settings), "pruner": _pruner(settings.pruner)})
    fixed = {p.name: p.choices[0] for p in parsed.parameters if p.kind == "fixed"}

    def finished(frozen: Any) -> None:
        if on_trial is not None:
            on_trial(_trial_of(frozen, fixed))

    outcome = run_study(
        TrialRunner(objective, parsed), settings, on_finished=finished, describe=describe
    )
    return _result(outcome.trials, metric, settings.direction, fixed), outcome.kept


def tune(
    estimator: Any,
    train: Any,
    valid: Any,
    label: str,
    space: SearchSpace | Mapping[str, Any] | str | Path,
    *,
    features: Sequence[str] | None = None,
    task: str | None = None,
    metric: str | None = None,
    direction: str | None = None,
    n_trials: int | None = 20,
    timeout: float | None = None,
    pruner: Any = "median",
    n_jobs: int = 1,
    seed: int | None = 0,
    stages: int = 5,
    training_statistics: Any = None,
    on_trial: Callable[[Trial], None] | None = None,
    parallel: str = "threads",
    storage: str | None = None,
) -> TuneResult:
    """Search ``estimator``'s parameters over ``space``: fit on ``train``, score ``metric``
    on ``valid``; the best fitted estimator becomes ``best_model``.

    ``estimator`` is an estimator (cloned, then ``set_params(**trial_params)``) or a
    function ``make(**trial_params) -> estimator``. ``metric`` defaults to ``auc`` for
    classification and ``rmse`` for regression; ``direction`` follows from the metric.
    ``parallel`` and ``storage`` as for :func:`optimize`: with ``processes`` or ``ray``
    the data goes to each worker once and each worker sends back its best estimator.

    >>> space = {"max_depth": {"int": [2, 8]}, "learning_rate": {"float": [0.01, 0.3], "log": True}}
    >>> result = tune(HistGradientBoostingClassifier(), train, valid, "late", space)  # doctest: +SKIP
    >>> result.best_params, result.best_model  # doctest: +SKIP
    """
    from ctloop.evaluate.metrics import is_higher_better

    X, y = split_features(_as_frame(train), label, features)
    X_valid, y_valid = split_features(_as_frame(valid), label, list(X.columns))
    make = _Maker(estimator)  # checks the estimator before anything else
    task = task or _task(estimator, y)
    metric = metric or ("auc" if task == "classification" else "rmse")
    direction = direction or ("maximize" if is_higher_better(metric) else "minimize")
    scorer = _Scorer(task, metric, X_valid, y_valid)
    objective = _FitAndScore(make, X, y, scorer, stages, direction)
    result, kept = _optimize(
        objective,
        space,
        StudySettings(direction, n_trials, timeout, pruner, n_jobs, seed, storage, parallel),
        on_trial,
        metric,
        make.describe,
    )
    model = build_model(_best_kept(kept, direction), X, task, training_statistics)
    return TuneResult(
        result.best_params, result.best_score, result.trials, metric, direction, model
    )


def staged_fit(
    estimator: Any,
    X: pd.DataFrame,
    y: pd.Series,
    score: Callable[[Any], float],
    reporter: TrialReporter | None,
    stages: int = 5,
) -> None:
    """Fit ``estimator`` in ``stages`` steps of its rounds, reporting ``score`` after each
    but the last; estimators that cannot train in steps fit in one go."""
    plan = _stage_plan(estimator)
    if plan is None or reporter is None or stages < 2:
        _fit_once(estimator, X, y)
        return
    name, total = plan
    points = sorted({max(1, round(total * (i + 1) / stages)) for i in range(stages)})
    done = 0
    for upto in points:
        _fit_more(estimator, X, y, name, done, upto)
        done = upto
        if upto < total:
            reporter.report(score(estimator), step=upto)
    if boosting_library(estimator) is not None:
        estimator.set_params(n_estimators=total)


def _stage_plan(estimator: Any) -> tuple[str, int] | None:
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    if boosting_library(estimator) is not None:
        return "n_estimators", int(params.get("n_estimators") or 100)
    if "warm_start" not in params:
        return None
    for name in ("max_iter", "n_estimators"):
        if isinstance(params.get(name), int):
            return name, int(params[name])
    return None


def _fit_more(estimator: Any, X: Any, y: Any, name: str, done: int, upto: int) -> None:
    library = boosting_library(estimator)
    if library == "xgboost":
        booster = estimator.get_booster() if done else None
        estimator.set_params(n_estimators=upto - done)
        estimator.fit(X, y, xgb_model=booster, verbose=False)
    elif library == "lightgbm":
        booster = estimator.booster_ if done else None
        estimator.set_params(n_estimators=upto - done)
        estimator.fit(X, y, init_model=booster)
    else:
        estimator.set_params(**{name: upto, "warm_start": True})
        estimator.fit(X, y)


def _fit_once(estimator: Any, X: Any, y: Any) -> None:
    if boosting_library(estimator) == "xgboost":
        estimator.fit(X, y, verbose=False)
    else:
        estimator.fit(X, y)


class _Scorer:
    """The tuning metric of a fitted estimator on the validation data."""

    def __init__(self, task: str, metric: str, X: pd.DataFrame, y: pd.Series) -> None:
        self.task, self.metric, self.X, self.y = task, metric, X, y

    def __call__(self, estimator: Any) -> float:
        from ctloop.evaluate.metrics import classification_metrics, regression_metrics

        if self.task == "classification":
            positive = list(estimator.classes_)[-1]
            proba = estimator.predict_proba(self.X)[:, -1]
            found = classification_metrics(
                self.y, proba, positive_label=positive, metrics=[self.metric]
            )
        else:
            found = regression_metrics(self.y, estimator.predict(self.X), metrics=[self.metric])
        value = found.values[self.metric]
        if value is None:
            raise TuningError(
                f"metric {self.metric!r} is undefined on the validation data "
                f"({found.notes.get(self.metric, 'no reason given')}); use more validation "
                "rows or another metric"
            )
        return float(value)


class _BestSoFar:
    """The best fitted estimator seen so far, with its trial number (trials may run in
    threads); ties go to the lower number, as in :func:`_result`."""

    def __init__(self, direction: str) -> None:
        self.direction = direction
        self.kept: tuple[int, float, Any] | None = None
        self._lock = threading.Lock()

    def offer(self, number: int, score: float, estimator: Any) -> None:
        rank = _rank(self.direction, score, number)
        with self._lock:
            if self.kept is None or rank < _rank(self.direction, self.kept[1], self.kept[0]):
                self.kept = (number, score, estimator)


def _rank(direction: str, score: float, number: int) -> tuple[float, int]:
    """Sorts trials best first; ties go to the lower trial number."""
    return (-score if direction == "maximize" else score, number)


def _best_kept(kept: list[tuple[int, float, Any]], direction: str) -> Any:
    """The estimator of the best trial among those the workers kept."""
    return min(kept, key=lambda k: _rank(direction, k[1], k[0]))[2] if kept else None


class _Maker:
    """Makes a trial's estimator: a clone of ``estimator`` with the trial's parameters, or
    ``estimator(**params)`` for a factory function."""

    def __init__(self, estimator: Any) -> None:
        self.is_estimator = hasattr(estimator, "get_params") and hasattr(estimator, "fit")
        if not self.is_estimator and not callable(estimator):
            raise TuningError(
                "tune() needs an estimator or a function making one from the trial's "
                f"parameters, not {type(estimator).__name__}"
            )
        self.estimator = estimator
        name = getattr(estimator, "__qualname__", type(estimator).__name__)
        self.describe = f"estimator {name!r}" if self.is_estimator else f"factory {name!r}"

    def __call__(self, params: dict[str, Any]) -> Any:
        if self.is_estimator:
            return clone_estimator(self.estimator).set_params(**params)
        return self.estimator(**params)


class _FitAndScore:
    """The objective of :func:`tune`: fit a trial's estimator in stages, score it, keep the
    best. Picklable (without what it kept), so that workers can run it."""

    def __init__(
        self, make: _Maker, X: Any, y: Any, scorer: _Scorer, stages: int, direction: str
    ) -> None:
        self.make, self.X, self.y, self.scorer, self.stages = make, X, y, scorer, stages
        self.direction = direction
        self._best = _BestSoFar(direction)

    def __call__(self, params: dict[str, Any], reporter: TrialReporter) -> float:
        fitted = self.make(params)
        shared = _share_cpus(fitted, params)
        staged_fit(fitted, self.X, self.y, self.scorer, reporter, self.stages)
        score = self.scorer(fitted)
        if shared:
            fitted.set_params(n_jobs=None)  # the model keeps the user's setting
        self._best.offer(reporter.number, score, fitted)
        return score

    def kept(self) -> tuple[int, float, Any] | None:
        """``(trial number, score, fitted estimator)`` of the best trial run here."""
        return self._best.kept

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "_best"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._best = _BestSoFar(self.direction)


def _share_cpus(estimator: Any, params: dict[str, Any]) -> bool:
    """In a tuning worker, an estimator left to use every CPU (``n_jobs=None``: LightGBM,
    XGBoost) uses the worker's share instead: workers would otherwise fight for the CPUs
    (OpenMP threads spinning on each other make that ten times slower)."""
    threads = worker_threads()
    if threads is None or "n_jobs" in params or not hasattr(estimator, "get_params"):
        return False
    current = estimator.get_params(deep=False)
    if "n_jobs" not in current or current["n_jobs"] is not None:
        return False
    estimator.set_params(n_jobs=threads)
    return True


def _task(estimator: Any, y: pd.Series) -> str:
    if hasattr(estimator, "fit"):
        from sklearn.base import is_classifier

        return "classification" if is_classifier(estimator) else "regression"
    kind = y.dtype.kind
    return "regression" if kind == "f" or (kind in "iu" and y.nunique() > 20) else "classification"


def _as_frame(data: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    return data.to_pandas() if hasattr(data, "to_pandas") else pd.DataFrame(data)


def _check_settings(settings: StudySettings) -> None:
    n_trials, timeout, n_jobs = settings.n_trials, settings.timeout, settings.n_jobs
    if settings.direction not in DIRECTIONS:
        raise TuningError(
            f"direction {settings.direction!r} is unknown; use 'maximize' or 'minimize'"
        )
    if n_trials is None and timeout is None:
        raise TuningError("a study needs n_trials or timeout (or both) to know when to stop")
    if n_trials is not None and n_trials < 1:
        raise TuningError(f"n_trials is {n_trials}; run at least 1 trial")
    if timeout is not None and timeout <= 0:
        raise TuningError(f"timeout is {timeout} s; give a positive number of seconds")
    if n_jobs == 0 or n_jobs < -1:
        raise TuningError(f"n_jobs is {n_jobs}; use 1 or more concurrent trials (-1: one per CPU)")
    if settings.parallel not in PARALLEL:
        raise TuningError(
            f"parallel={settings.parallel!r} is unknown; use one of {', '.join(PARALLEL)}"
        )


def _pruner(pruner: Any) -> Any:
    import optuna

    if pruner is None or pruner == "none":
        return optuna.pruners.NopPruner()
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    raise TuningError(
        f"pruner {pruner!r} is unknown; use 'median', 'none' or an optuna.pruners object"
    )


def _trial_of(frozen: Any, fixed: dict[str, Any]) -> Trial:
    duration = frozen.duration.total_seconds() if frozen.duration is not None else 0.0
    return Trial(
        number=int(frozen.number),
        params={**fixed, **frozen.params},
        # Optuna gives a pruned trial its last intermediate value; only finished ones score
        score=float(frozen.value) if frozen.state.name == "COMPLETE" else None,
        state=_STATES.get(frozen.state.name, frozen.state.name.lower()),
        duration=duration,
        intermediate={int(k): float(v) for k, v in frozen.intermediate_values.items()},
        error=frozen.user_attrs.get("error"),
        worker=frozen.user_attrs.get(WORKER),
    )


def _result(frozen: list[Any], metric: str, direction: str, fixed: dict[str, Any]) -> TuneResult:
    trials = sorted((_trial_of(t, fixed) for t in frozen), key=lambda t: t.number)
    done = [t for t in trials if t.state == "complete" and t.score is not None]
    if not done:
        first = next((t.error for t in trials if t.error), "every trial was pruned")
        raise TuningError(
            f"no trial of the study finished ({len(trials)} tried; first error: {first}); "
            "fix the estimator or widen the search space"
        )
    best = min(done, key=lambda t: _rank(direction, t.score or 0.0, t.number))
    return TuneResult(best.params, best.score or 0.0, trials, metric, direction)
