"""Hyper-parameter tuning with Optuna: a search space, trials, pruning, the best model.

:func:`tune` searches an estimator's parameters, scoring each trial on validation data;
:func:`optimize` runs a study over any objective ``f(params, reporter) -> score``.

Pruning: an objective reports intermediate scores with ``reporter.report(value, step)``;
Optuna's pruner (``"median"`` by default) stops a trial that does worse than earlier trials
at the same step. :func:`tune` reports by training in stages: XGBoost and LightGBM
continue their booster (``xgb_model=`` / ``init_model=``), scikit-learn estimators with
``warm_start`` grow ``max_iter`` or ``n_estimators``; other estimators fit in one go and
are never pruned.

Parallel trials (``n_jobs > 1``) run in threads of this process (Optuna's own
``n_jobs``): boosting libraries and scikit-learn release the GIL while they fit. With
threads the order of trials, hence the result, may vary even with a seed.

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
from ctloop.train.space import SearchSpace

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.artifacts.model import Model

DIRECTIONS = ("maximize", "minimize")
_STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}


class TrialPruned(Exception):
    """Raised by :meth:`TrialReporter.report` when the pruner stops the trial."""


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
) -> TuneResult:
    """Run an Optuna study of ``objective`` over ``space``; stop after ``n_trials`` or
    ``timeout`` seconds, whichever comes first. ``on_trial`` sees every finished trial.

    >>> optimize(lambda p, r: p["n"], {"n": {"int": [1, 3]}}, n_trials=5).best_score
    3.0
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    parsed = SearchSpace.parse(space)
    _check_settings(direction, n_trials, timeout, n_jobs)
    study = optuna.create_study(
        direction=direction,  # type: ignore[arg-type]  # checked above
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=_pruner(pruner),
    )

    def run_trial(trial: Any) -> float:
        params = parsed.sample(trial)
        try:
            return float(objective(params, TrialReporter(trial)))
        except TrialPruned as exc:
            raise optuna.TrialPruned(str(exc)) from exc
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise

    fixed = {p.name: p.choices[0] for p in parsed.parameters if p.kind == "fixed"}

    def finished(_study: Any, frozen: Any) -> None:
        if on_trial is not None:
            on_trial(_trial_of(frozen, fixed))

    study.optimize(
        run_trial,
        n_trials=n_trials,
        timeout=timeout,
        n_jobs=n_jobs,
        catch=(Exception,),
        callbacks=[finished],
    )
    return _result(study, metric, direction, fixed)


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
) -> TuneResult:
    """Search ``estimator``'s parameters over ``space``: fit on ``train``, score ``metric``
    on ``valid``; the best fitted estimator becomes ``best_model``.

    ``estimator`` is an estimator (cloned, then ``set_params(**trial_params)``) or a
    function ``make(**trial_params) -> estimator``. ``metric`` defaults to ``auc`` for
    classification and ``rmse`` for regression; ``direction`` follows from the metric.

    >>> space = {"max_depth": {"int": [2, 8]}, "learning_rate": {"float": [0.01, 0.3], "log": True}}
    >>> result = tune(HistGradientBoostingClassifier(), train, valid, "late", space)  # doctest: +SKIP
    >>> result.best_params, result.best_model  # doctest: +SKIP
    """
    from ctloop.evaluate.metrics import is_higher_better

    X, y = split_features(_as_frame(train), label, features)
    X_valid, y_valid = split_features(_as_frame(valid), label, list(X.columns))
    make = _maker(estimator)
    task = task or _task(estimator, y)
    metric = metric or ("auc" if task == "classification" else "rmse")
    direction = direction or ("maximize" if is_higher_better(metric) else "minimize")
    scorer = _Scorer(task, metric, X_valid, y_valid)
    best = _BestSoFar(direction)

    def objective(params: dict[str, Any], reporter: TrialReporter) -> float:
        fitted = make(params)
        staged_fit(fitted, X, y, scorer, reporter, stages)
        score = scorer(fitted)
        best.offer(score, fitted)
        return score

    result = optimize(
        objective,
        space,
        direction=direction,
        n_trials=n_trials,
        timeout=timeout,
        pruner=pruner,
        n_jobs=n_jobs,
        seed=seed,
        on_trial=on_trial,
        metric=metric,
    )
    model = build_model(best.estimator, X, task, training_statistics)
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
    """The best fitted estimator seen so far (trials may run in threads)."""

    def __init__(self, direction: str) -> None:
        self.sign = 1.0 if direction == "maximize" else -1.0
        self.score: float | None = None
        self.estimator: Any = None
        self._lock = threading.Lock()

    def offer(self, score: float, estimator: Any) -> None:
        with self._lock:
            if self.score is None or self.sign * score > self.sign * self.score:
                self.score, self.estimator = score, estimator


def _maker(estimator: Any) -> Callable[[dict[str, Any]], Any]:
    if hasattr(estimator, "get_params") and hasattr(estimator, "fit"):
        return lambda params: clone_estimator(estimator).set_params(**params)
    if callable(estimator):
        return lambda params: estimator(**params)
    raise TuningError(
        f"tune() needs an estimator or a function making one from the trial's parameters, "
        f"not {type(estimator).__name__}"
    )


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


def _check_settings(
    direction: str, n_trials: int | None, timeout: float | None, n_jobs: int
) -> None:
    if direction not in DIRECTIONS:
        raise TuningError(f"direction {direction!r} is unknown; use 'maximize' or 'minimize'")
    if n_trials is None and timeout is None:
        raise TuningError("a study needs n_trials or timeout (or both) to know when to stop")
    if n_trials is not None and n_trials < 1:
        raise TuningError(f"n_trials is {n_trials}; run at least 1 trial")
    if timeout is not None and timeout <= 0:
        raise TuningError(f"timeout is {timeout} s; give a positive number of seconds")
    if n_jobs == 0 or n_jobs < -1:
        raise TuningError(f"n_jobs is {n_jobs}; use 1 or more threads (-1: one per CPU)")


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
    )


def _result(study: Any, metric: str, direction: str, fixed: dict[str, Any]) -> TuneResult:
    trials = sorted((_trial_of(t, fixed) for t in study.trials), key=lambda t: t.number)
    done = [t for t in trials if t.state == "complete"]
    if not done:
        first = next((t.error for t in trials if t.error), "every trial was pruned")
        raise TuningError(
            f"no trial of the study finished ({len(trials)} tried; first error: {first}); "
            "fix the estimator or widen the search space"
        )
    best = study.best_trial
    params = {**fixed, **best.params}
    return TuneResult(params, float(best.value), trials, metric, direction)
