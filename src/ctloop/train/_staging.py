"""Training in stages, so that the pruner can stop a poor trial early; the validation score.

:func:`staged_fit` reports the tuning metric on the validation data at ``stages`` points
of an estimator's rounds:

- XGBoost and LightGBM train once, with all their rounds: a training callback scores the
  booster's predictions on the validation data at each stage point and stops the
  training when the pruner says so. Those predictions grow tree by tree (XGBoost's
  prediction cache; LightGBM's own validation set, whose scores the fitted estimator
  keeps in ``evals_result_``), so staging costs about one prediction of the validation
  data. A finished trial is exactly one fit, predicting as a fit without stages does;
  its last stage (all rounds) is recorded without asking the pruner, and is the score
  of the finished model.
- scikit-learn estimators with ``warm_start`` grow ``max_iter`` or ``n_estimators`` stage
  by stage, reporting after each but the last.
- other estimators fit in one go and are never pruned.

>>> import pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
>>> scorer = ValidationScorer("regression", "rmse", X, 2 * X["x"])
>>> model = LinearRegression()
>>> staged_fit(model, X, 2 * X["x"], scorer, reporter=None)
>>> round(scorer(model), 6)
0.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ctloop.errors import TuningError
from ctloop.train._checkpointing import boosting_library
from ctloop.train._parallel import TrialPruned, TrialReporter

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ValidationScorer", "stage_points", "staged_fit"]

# LightGBM's names for early stopping, which a validation set would switch on
_LIGHTGBM_EARLY_STOPPING = (
    "early_stopping_round",
    "early_stopping_rounds",
    "early_stopping",
    "n_iter_no_change",
)


class ValidationScorer:
    """The tuning ``metric`` of a fitted estimator on validation data ``X``, ``y``: of the
    positive class's probability for classification (the last class), of the predictions
    for regression.

    >>> import pandas as pd
    >>> scorer = ValidationScorer("classification", "auc", pd.DataFrame({"x": [0, 1]}),
    ...                           pd.Series([0, 1]))
    >>> scorer.score_predictions([0.2, 0.9], positive=1)
    1.0
    """

    def __init__(self, task: str, metric: str, X: pd.DataFrame, y: pd.Series) -> None:
        self.task, self.metric, self.X, self.y = task, metric, X, y

    def __call__(self, estimator: Any) -> float:
        if self.task == "classification":
            positive = list(estimator.classes_)[-1]
            return self.score_predictions(estimator.predict_proba(self.X)[:, -1], positive)
        return self.score_predictions(estimator.predict(self.X))

    def score_predictions(self, predicted: Any, positive: Any = None) -> float:
        """The metric of ``predicted`` (probabilities of ``positive``, or values)."""
        from ctloop.evaluate._metrics import classification_metrics, regression_metrics

        if self.task == "classification":
            found = classification_metrics(
                self.y, predicted, positive_label=positive, metrics=[self.metric]
            )
        else:
            found = regression_metrics(self.y, predicted, metrics=[self.metric])
        value = found.values[self.metric]
        if value is None:
            raise TuningError(
                f"metric {self.metric!r} is undefined on the validation data "
                f"({found.notes.get(self.metric, 'no reason given')}); use more validation "
                "rows or another metric"
            )
        return float(value)


def stage_points(total: int, stages: int) -> list[int]:
    """The rounds after which a training in ``stages`` stages of ``total`` rounds reports.

    >>> stage_points(100, 5)
    [20, 40, 60, 80, 100]
    >>> stage_points(3, 5)
    [1, 2, 3]
    """
    return sorted({max(1, round(total * (i + 1) / stages)) for i in range(stages)})


def staged_fit(
    estimator: Any,
    X: pd.DataFrame,
    y: pd.Series,
    score: ValidationScorer,
    reporter: TrialReporter | None,
    stages: int = 5,
) -> float | None:
    """Fit ``estimator`` on ``X``, ``y``, reporting ``score`` to ``reporter`` at ``stages``
    points of its rounds (see the module's description); raises :class:`TrialPruned`
    when the pruner stops the trial. Without a reporter it is a plain fit. Returns the
    finished estimator's score when its last stage scored it (boosting), else ``None``.

    >>> staged_fit(XGBClassifier(n_estimators=200), X, y, scorer, reporter)  # doctest: +SKIP
    0.8731
    """
    plan = _stage_plan(estimator)
    if plan is None or reporter is None or stages < 2:
        _fit_once(estimator, X, y)
        return None
    name, total = plan
    library = boosting_library(estimator)
    if library is None:
        _fit_warm_started(estimator, X, y, score, reporter, name, stage_points(total, stages))
        return None
    if library == "lightgbm" and not _lightgbm_can_validate(estimator, y, score):
        _fit_once(estimator, X, y)
        return None
    reports = _StageReports(score, reporter, stage_points(total, stages), y)
    if library == "xgboost":
        _fit_xgboost(estimator, X, y, reports)
    else:
        _fit_lightgbm(estimator, X, y, reports)
    if reports.pruned is not None:
        raise reports.pruned
    return reports.last


def _stage_plan(estimator: Any) -> tuple[str, int] | None:
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    library = boosting_library(estimator)
    if library is not None:
        # a custom or a label-valued objective has no probabilities to score in training
        if callable(params.get("objective")) or params.get("objective") == "multi:softmax":
            return None
        if library == "xgboost":  # random forests are one round of many trees
            rounds = int(estimator.get_num_boosting_rounds())
        else:
            rounds = int(params.get("n_estimators") or 100)
        return ("n_estimators", rounds) if rounds >= 2 else None
    if "warm_start" not in params:
        return None
    for name in ("max_iter", "n_estimators"):
        if isinstance(params.get(name), int):
            return name, int(params[name])
    return None


def _fit_once(estimator: Any, X: Any, y: Any) -> None:
    if boosting_library(estimator) == "xgboost":
        estimator.fit(X, y, verbose=False)
    else:
        estimator.fit(X, y)


def _fit_warm_started(
    estimator: Any,
    X: Any,
    y: Any,
    score: ValidationScorer,
    reporter: TrialReporter,
    name: str,
    points: list[int],
) -> None:
    """scikit-learn's ``warm_start``: each fit adds the rounds up to the next point."""
    total = points[-1]
    for upto in points:
        estimator.set_params(**{name: upto, "warm_start": True})
        estimator.fit(X, y)
        if upto < total:
            reporter.report(score(estimator), step=upto)


class _StageReports:
    """Reports a boosting training's validation score at the stage points; remembers the
    pruning that stopped it (the libraries' callbacks stop a training, they do not fail
    it)."""

    def __init__(
        self, score: ValidationScorer, reporter: TrialReporter, points: list[int], y: Any
    ) -> None:
        import numpy as np

        self.score, self.reporter, self.points = score, reporter, frozenset(points)
        self.total = max(points)
        # both libraries order the classes as numpy does: the positive one is the last
        self.positive = np.unique(np.asarray(y))[-1] if score.task == "classification" else None
        self.pruned: TrialPruned | None = None
        self.last: float | None = None  # the score after all the rounds

    def after_round(self, rounds: int, predict: Callable[[], Any]) -> bool:
        """Report after ``rounds`` rounds if it is a stage point; whether to stop."""
        if rounds not in self.points:
            return False
        predicted = predict()
        if self.score.task == "classification" and predicted.ndim == 2:
            predicted = predicted[:, -1]  # multi-class: the last class, as the scorer does
        value = self.score.score_predictions(predicted, self.positive)
        if rounds == self.total:
            self.last = value
        try:
            self.reporter.report(value, step=rounds, prune=rounds < self.total)
        except TrialPruned as exc:
            self.pruned = exc
            return True
        return False


def _fit_xgboost(estimator: Any, X: Any, y: Any, stages: _StageReports) -> None:
    import xgboost

    class _ReportStages(xgboost.callback.TrainingCallback):
        valid: Any = None

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            return stages.after_round(int(model.num_boosted_rounds()), lambda: self._predict(model))

        def _predict(self, model: Any) -> Any:
            # XGBoost caches its predictions on a DMatrix: later stages add only new trees
            if self.valid is None:
                self.valid = _xgboost_matrix(estimator, stages.score.X)
            return model.predict(self.valid)

    previous = estimator.get_params().get("callbacks")
    estimator.set_params(callbacks=[*(previous or []), _ReportStages()])
    try:
        estimator.fit(X, y, verbose=False)
    finally:
        estimator.set_params(callbacks=previous)  # the model keeps no callback of ours


def _xgboost_matrix(estimator: Any, X: Any) -> Any:
    """``X`` as ``estimator.predict`` reads it when it does not predict in place."""
    import xgboost

    return xgboost.DMatrix(
        X,
        missing=estimator.missing,
        nthread=estimator.n_jobs,
        feature_types=estimator.feature_types,
        enable_categorical=estimator.enable_categorical,
    )


def _fit_lightgbm(estimator: Any, X: Any, y: Any, stages: _StageReports) -> None:
    """LightGBM scores its validation set round by round (one tree at a time, where
    ``predict`` at each stage would run every tree again); the callback reads those
    predictions at the stage points."""
    import inspect

    import lightgbm
    from lightgbm.callback import EarlyStopException

    def report_stages(env: Any) -> None:
        rounds = int(env.iteration) + 1
        if stages.after_round(rounds, lambda: _lightgbm_validation_predictions(env.model)):
            raise EarlyStopException(int(env.iteration), env.evaluation_result_list or [])

    report_stages.order = 40  # type: ignore[attr-defined]  # after LightGBM's own callbacks
    valid_X, valid_y = stages.score.X, stages.score.y
    if "eval_X" in inspect.signature(lightgbm.LGBMModel.fit).parameters:  # LightGBM >= 4.7
        estimator.fit(X, y, eval_X=valid_X, eval_y=valid_y, callbacks=[report_stages])
    else:
        estimator.fit(X, y, eval_set=[(valid_X, valid_y)], callbacks=[report_stages])


def _lightgbm_validation_predictions(booster: Any) -> Any:
    """The training booster's predictions on its (one) validation set."""
    import numpy as np

    found: list[Any] = []

    def keep(predicted: Any, data: Any) -> tuple[str, float, bool]:
        found.append(np.array(predicted, copy=True))  # LightGBM reuses the array
        return "ctloop_stage", 0.0, True

    booster.eval_valid(feval=keep)
    return found[0]


def _lightgbm_can_validate(estimator: Any, y: Any, score: ValidationScorer) -> bool:
    """Whether a validation set leaves the LightGBM training as it is: not with early
    stopping asked for (it would stop on that set), nor with validation labels the
    training data lacks (the classifier refuses them)."""
    import numpy as np

    params = estimator.get_params()
    if any(params.get(name) for name in _LIGHTGBM_EARLY_STOPPING):
        return False
    if score.task != "classification":
        return True
    return bool(np.isin(np.unique(np.asarray(score.y)), np.unique(np.asarray(y))).all())
