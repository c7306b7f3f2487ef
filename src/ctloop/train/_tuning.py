"""Hyper-parameter tuning with Optuna: a search space, trials, pruning, the best model.

:func:`tune` searches an estimator's parameters, scoring each trial on validation data;
:func:`optimize` runs a study over any objective ``f(params, reporter) -> score``.

Pruning: an objective reports intermediate scores with ``reporter.report(value, step)``;
Optuna's pruner (``"median"`` by default) stops a trial that does worse than earlier trials
at the same step. :func:`tune` reports at ``stages`` points of the training
(:mod:`ctloop.train._staging`): XGBoost and LightGBM train once, a training callback
scoring the validation data at each point and stopping a pruned trial there;
scikit-learn estimators with ``warm_start`` grow ``max_iter`` or ``n_estimators`` stage by
stage; other estimators fit in one go and are never pruned.

Parallel trials: ``n_jobs`` trials run at a time, where ``parallel`` says. ``threads``
(the default) are threads of this process (Optuna's own ``n_jobs``): boosting libraries
and scikit-learn release the GIL while they fit. ``processes`` and ``ray`` run
``n_jobs`` workers sharing one study (see :mod:`ctloop.train._parallel`); their objective
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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import TuningError
from ctloop.train._fitting import build_model, split_features
from ctloop.train._objective import EstimatorMaker, FitAndScore, best_kept, rank
from ctloop.train._parallel import (
    PARALLEL,
    WORKER,
    Objective,
    StudySettings,
    TrialPruned,
    TrialReporter,
    TrialRunner,
    run_study,
)
from ctloop.train._space import SearchSpace
from ctloop.train._staging import ValidationScorer, staged_fit
from ctloop.train._threads import cpu_budget

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
    from ctloop.evaluate._metrics import is_higher_better

    X, y = split_features(_as_frame(train), label, features)
    X_valid, y_valid = split_features(_as_frame(valid), label, list(X.columns))
    make = EstimatorMaker(estimator)  # checks the estimator before anything else
    task = task or _task(estimator, y)
    metric = metric or ("auc" if task == "classification" else "rmse")
    direction = direction or ("maximize" if is_higher_better(metric) else "minimize")
    scorer = ValidationScorer(task, metric, X_valid, y_valid)
    objective = FitAndScore(make, X, y, scorer, stages, direction, _trial_cores(n_jobs))
    result, kept = _optimize(
        objective,
        space,
        StudySettings(direction, n_trials, timeout, pruner, n_jobs, seed, storage, parallel),
        on_trial,
        metric,
        make.describe,
    )
    model = build_model(best_kept(kept, direction), X, task, training_statistics)
    return TuneResult(
        result.best_params, result.best_score, result.trials, metric, direction, model
    )


def _trial_cores(n_jobs: int) -> int:
    """The threads one trial may use when ``n_jobs`` trials share this process's cores."""
    cores = cpu_budget()
    concurrent = cores if n_jobs == -1 else max(1, n_jobs)
    return max(1, cores // concurrent)


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
    best = min(done, key=lambda t: rank(direction, t.score or 0.0, t.number))
    return TuneResult(best.params, best.score or 0.0, trials, metric, direction)
