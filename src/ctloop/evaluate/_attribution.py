"""Feature attributions by permutation importance, for any model with ``predict``.

A feature's importance is how much the chosen metric gets worse when that feature's
column is shuffled: the mean and standard deviation of the drop over ``n_repeats``
shuffles (for a lower-is-better metric such as RMSE the drop is the rise in error).

>>> import numpy as np, pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"signal": rng.normal(size=200), "noise": rng.normal(size=200)})
>>> y = 3 * X["signal"]
>>> model = LinearRegression().fit(X, y)
>>> [a.feature for a in permutation_importance(model, X, y, task="regression")]
['signal', 'noise']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ctloop.errors import EvaluationError
from ctloop.evaluate._metrics import (
    classification_metrics,
    is_higher_better,
    regression_metrics,
)

TASKS = ("classification", "regression")
DEFAULT_METRIC = {"classification": "auc", "regression": "rmse"}


@dataclass(frozen=True)
class FeatureAttribution:
    """How much ``metric`` drops when ``feature`` is shuffled (mean and std over repeats).

    >>> FeatureAttribution("distance", "auc", 0.12, 0.01).to_dict()["mean_drop"]
    0.12
    """

    feature: str
    metric: str
    mean_drop: float
    std_drop: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureAttribution:
        """Read what ``to_dict`` wrote."""
        return cls(**data)


def permutation_importance(
    model: Any,
    features: pd.DataFrame,
    y_true: Any,
    *,
    task: str = "classification",
    metric: str | None = None,
    n_repeats: int = 5,
    random_state: int = 0,
    positive_label: Any = 1,
) -> tuple[FeatureAttribution, ...]:
    """Permutation importance of every column of ``features``, most important first.

    ``metric`` defaults to ``auc`` for classification and ``rmse`` for regression. The
    loop is written here rather than taken from ``sklearn.inspection``, which accepts only
    estimators with ``fit``.

    >>> permutation_importance(None, pd.DataFrame(), [], task="ranking")
    Traceback (most recent call last):
    ...
    ctloop.errors.EvaluationError: unknown task 'ranking'; use 'classification' or 'regression'
    """
    check_task(task)
    chosen = metric or DEFAULT_METRIC[task]
    sign = 1.0 if is_higher_better(chosen) else -1.0
    truth = np.asarray(y_true)

    def score(shuffled: pd.DataFrame) -> float:
        return sign * _metric_value(model, shuffled, truth, task, chosen, positive_label)

    baseline = score(features)
    rng = np.random.default_rng(random_state)
    found = []
    for name in features.columns:
        drops = [baseline - score(_shuffled(features, name, rng)) for _ in range(n_repeats)]
        found.append(
            FeatureAttribution(str(name), chosen, float(np.mean(drops)), float(np.std(drops)))
        )
    return tuple(sorted(found, key=lambda a: -a.mean_drop))


def model_predictions(
    model: Any, features: pd.DataFrame, *, task: str, positive_label: Any = 1
) -> np.ndarray:
    """What the metrics of ``task`` take: the positive class's probability, or predictions.

    A classifier without ``predict_proba`` is scored by its hard predictions (1.0 for the
    positive label, else 0.0). ``model`` is a fitted estimator or a
    :class:`ctloop.artifacts.model.Model` (its estimator sees ``features`` converted to
    the signature's types).

    >>> from sklearn.dummy import DummyRegressor
    >>> X = pd.DataFrame({"x": [1, 2]})
    >>> model_predictions(DummyRegressor().fit(X, [1.0, 3.0]), X, task="regression").tolist()
    [2.0, 2.0]
    """
    check_task(task)
    if is_ctloop_model(model):
        model, features = model.estimator, model.prepare(features, allow_extra=True)
    if task == "regression":
        return np.asarray(model.predict(features), dtype=float)
    if not hasattr(model, "predict_proba"):
        return (np.asarray(model.predict(features)) == positive_label).astype(float)
    classes = list(getattr(model, "classes_", [0, 1]))
    if positive_label not in classes:
        raise EvaluationError(
            f"positive_label {positive_label!r} is not one of the model's classes {classes}; "
            "pass positive_label= with one of them"
        )
    return np.asarray(model.predict_proba(features), dtype=float)[:, classes.index(positive_label)]


def is_ctloop_model(model: Any) -> bool:
    """Whether ``model`` is a :class:`ctloop.artifacts.model.Model` (an estimator with its
    signature), rather than a bare fitted estimator.

    >>> is_ctloop_model(object())
    False
    """
    return all(hasattr(model, name) for name in ("estimator", "signature", "prepare", "task"))


def check_task(task: str) -> None:
    """Refuse a task other than classification or regression.

    >>> check_task("regression")
    """
    if task not in TASKS:
        raise EvaluationError(f"unknown task {task!r}; use 'classification' or 'regression'")


def _shuffled(features: pd.DataFrame, column: Any, rng: np.random.Generator) -> pd.DataFrame:
    copy = features.copy()
    copy[column] = rng.permutation(copy[column].to_numpy())
    return copy


def _metric_value(
    model: Any, features: pd.DataFrame, y_true: Any, task: str, metric: str, positive_label: Any
) -> float:
    predicted = model_predictions(model, features, task=task, positive_label=positive_label)
    if task == "classification":
        found = classification_metrics(
            y_true, predicted, positive_label=positive_label, metrics=[metric]
        )
    else:
        found = regression_metrics(y_true, predicted, metrics=[metric])
    value = found.values[metric]
    if value is None:
        raise EvaluationError(
            f"metric {metric!r} is {found.notes[metric]}, so it cannot rank features; "
            "choose another metric= for the attributions"
        )
    return value
