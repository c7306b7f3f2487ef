"""``fit``: train an estimator on a table and wrap it as a :class:`~ctloop.artifacts.model.Model`.

>>> import pandas as pd
>>> from sklearn.linear_model import LinearRegression
>>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.0, 6.0, 8.0]})
>>> result = fit(LinearRegression(), frame, label="y")
>>> result.model.signature.input_names, round(result.metrics["mae"], 6)
(['x'], 0.0)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctloop.errors import TrainingError
from ctloop.train._checkpointing import (
    CheckpointStore,
    boosting_library,
    fit_boosting_with_checkpoints,
)
from ctloop.train._threads import thread_budget, thread_limits

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.artifacts.model import Model

TASKS = ("classification", "regression", "other")


@dataclass(frozen=True)
class FitResult:
    """A fitted model, its training metrics (and eval metrics, prefixed ``eval_``), and the
    boosting round a checkpointed fit resumed from (0 when it started fresh)."""

    model: Model
    metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: int = 0


def fit(
    estimator: Any,
    data: Any,
    label: str,
    *,
    features: Sequence[str] | None = None,
    task: str | None = None,
    training_statistics: Any = None,
    eval_data: Any = None,
    checkpoints: CheckpointStore | None = None,
    checkpoint_every: int = 10,
    trusted: bool = False,
    metadata: Mapping[str, Any] | None = None,
    cores: int | None = None,
) -> FitResult:
    """Fit a copy of ``estimator`` on ``data`` (features plus the ``label`` column).

    ``features`` defaults to every column but the label. The model's signature comes
    from the training features; its training statistics are computed from them unless
    given. Metrics are the task's (:mod:`ctloop.evaluate._metrics`) on the training data,
    and on ``eval_data`` as ``eval_<name>`` when given. With ``checkpoints``, an XGBoost or
    LightGBM estimator saves its booster every ``checkpoint_every`` rounds and resumes
    from the latest one. The fit and its scoring run on ``cores`` threads (default: the
    cores this process was given, :func:`ctloop.train._threads.cpu_budget`).

    >>> fit(LinearRegression(), frame, label="price").metrics["rmse"]  # doctest: +SKIP
    """
    frame = _frame(data, "data")
    X, y = split_features(frame, label, features)
    model_estimator = clone_estimator(estimator)
    resumed = 0
    with thread_budget(model_estimator, cores):
        if checkpoints is not None and boosting_library(model_estimator) is not None:
            resumed = fit_boosting_with_checkpoints(
                model_estimator, X, y, checkpoints, every=checkpoint_every
            )
        else:
            _fit_plain(model_estimator, X, y)
    model = build_model(model_estimator, X, task, training_statistics, trusted, metadata)
    with thread_limits(cores):
        metrics = task_metrics(model, X, y)
        if eval_data is not None:
            X_eval, y_eval = split_features(_frame(eval_data, "eval_data"), label, X.columns)
            metrics |= {f"eval_{k}": v for k, v in task_metrics(model, X_eval, y_eval).items()}
    return FitResult(model, metrics, resumed)


def split_features(
    frame: pd.DataFrame, label: str, features: Sequence[str] | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """The feature columns and the label column of ``frame``."""
    if label not in frame.columns:
        raise TrainingError(
            f"label column {label!r} is not in the data (columns: "
            f"{', '.join(map(str, frame.columns))}); pass label= with the column to predict"
        )
    names = [c for c in frame.columns if c != label] if features is None else list(features)
    missing = [c for c in names if c not in frame.columns]
    if missing or not names:
        raise TrainingError(
            f"feature columns {missing or names!r} are not in the data (columns: "
            f"{', '.join(map(str, frame.columns))}); fix features= or the data"
        )
    if label in names:
        raise TrainingError(f"the label {label!r} is also listed as a feature; remove it")
    return frame[names], frame[label]


def clone_estimator(estimator: Any) -> Any:
    """An unfitted copy with the same parameters (``sklearn.base.clone``, else a deep copy)."""
    try:
        from sklearn.base import clone

        return clone(estimator)
    except TypeError:  # not a scikit-learn estimator
        return copy.deepcopy(estimator)


def build_model(
    estimator: Any,
    X: pd.DataFrame,
    task: str | None,
    training_statistics: Any = None,
    trusted: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Model:
    """The ``Model`` of a fitted estimator, with statistics of ``X`` unless given."""
    from ctloop.artifacts.model import Model
    from ctloop.data import compute_statistics

    if task is not None and task not in TASKS:
        raise TrainingError(f"task {task!r} is unknown; use one of {', '.join(TASKS)}")
    stats = training_statistics if training_statistics is not None else compute_statistics(X)
    return Model.from_estimator(
        estimator,
        X,
        task=task,
        training_statistics=stats,
        trusted=trusted,
        metadata=metadata,
    )


def task_metrics(model: Model, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """The task's metrics of ``model`` on ``X`` against ``y`` (undefined ones left out)."""
    from ctloop.evaluate._metrics import classification_metrics, regression_metrics

    predicted = model.predict_frame(X)
    if model.task == "classification":
        classes = list(getattr(model.estimator, "classes_", []))
        if len(classes) != 2 or predicted.ndim != 1:
            return {}  # metrics of ctloop.evaluate are binary; multi-class gets none here
        found = classification_metrics(y, predicted, positive_label=classes[1])
    elif model.task == "regression":
        found = regression_metrics(y, predicted)
    else:
        return {}
    return {k: float(v) for k, v in found.values.items() if v is not None}


def _fit_plain(estimator: Any, X: pd.DataFrame, y: pd.Series) -> None:
    if not hasattr(estimator, "fit"):
        raise TrainingError(
            f"{type(estimator).__name__} has no fit method; pass a scikit-learn compatible "
            "estimator (XGBoost and LightGBM ones included)"
        )
    if boosting_library(estimator) == "xgboost":
        estimator.fit(X, y, verbose=False)
    else:
        estimator.fit(X, y)


def _frame(data: Any, name: str) -> pd.DataFrame:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):  # Arrow tables, polars frames
        return data.to_pandas()
    try:
        return pd.DataFrame(data)
    except (TypeError, ValueError) as exc:
        raise TrainingError(
            f"{name} is a {type(data).__name__}, which is not a table; pass a pandas or "
            "polars DataFrame, an Arrow table, or a dict of columns"
        ) from exc
