"""Classification and regression metrics on a held-out set.

Classification metrics take the true labels and the score (probability) of the positive
class; regression metrics take the true and the predicted values. A metric that is not
defined for the data (AUC when ``y_true`` holds one class, MAPE when it holds a zero) is
``None`` with its reason in ``notes``, rather than an exception.

>>> m = classification_metrics([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.4])
>>> m.values["auc"], m.values["accuracy"]
(1.0, 1.0)
>>> regression_metrics([1.0, 2.0], [1.0, 4.0]).values["mae"]
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ctloop.errors import EvaluationError

CLASSIFICATION_METRICS = ("auc", "log_loss", "accuracy", "precision", "recall", "f1", "ece")
REGRESSION_METRICS = ("mae", "rmse", "r2", "mape")
HIGHER_IS_BETTER = frozenset({"auc", "accuracy", "precision", "recall", "f1", "r2"})
LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "mape", "ece"})


@dataclass(frozen=True)
class MetricSet:
    """Metric values by name (``None`` where undefined) and the reasons they are undefined.

    >>> MetricSet({"auc": None}, {"auc": "y_true holds one class"}).to_dict()["notes"]
    {'auc': 'y_true holds one class'}
    """

    values: dict[str, float | None]
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return {"values": dict(self.values), "notes": dict(self.notes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricSet:
        """Read what ``to_dict`` wrote."""
        return cls(dict(data["values"]), dict(data.get("notes", {})))


@dataclass(frozen=True)
class CalibrationBin:
    """One bin of a reliability table: mean score against the observed positive rate.

    >>> CalibrationBin(0.0, 0.5, 4, 0.25, 0.5).gap
    0.25
    """

    lower: float
    upper: float
    rows: int
    mean_score: float
    positive_rate: float

    @property
    def gap(self) -> float:
        """How far the observed rate is from the mean score."""
        return abs(self.positive_rate - self.mean_score)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationBin:
        """Read what ``to_dict`` wrote."""
        return cls(**data)


def classification_metrics(
    y_true: Any,
    y_score: Any,
    *,
    positive_label: Any = 1,
    threshold: float = 0.5,
    metrics: Sequence[str] | None = None,
) -> MetricSet:
    """Binary classification metrics of scores ``y_score`` (probability of ``positive_label``).

    Labels are positive when scored at or above ``threshold``; ``ece`` is the expected
    calibration error over ten equal-width bins.

    >>> classification_metrics([0, 1], [0.2, 0.9], metrics=["accuracy"]).values
    {'accuracy': 1.0}
    """
    names = _chosen(metrics, CLASSIFICATION_METRICS, "classification")
    truth, score = _checked_pair(y_true, y_score, "y_score")
    positive = (truth == positive_label).astype(int)
    if np.any((score < 0) | (score > 1)):
        raise EvaluationError(
            f"y_score holds values outside [0, 1] (min {score.min():g}, max {score.max():g}); "
            "pass the probability of the positive class, e.g. predict_proba(X)[:, 1]"
        )
    values: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    for name in names:
        values[name] = _classification_metric(name, positive, score, threshold, notes)
    return MetricSet(values, notes)


def regression_metrics(
    y_true: Any, y_pred: Any, *, metrics: Sequence[str] | None = None
) -> MetricSet:
    """Regression metrics of predictions ``y_pred``; MAPE is a fraction (0.1 = 10 %).

    >>> regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]).values["r2"]
    1.0
    """
    names = _chosen(metrics, REGRESSION_METRICS, "regression")
    truth, pred = _checked_pair(y_true, y_pred, "y_pred")
    truth = truth.astype(float)
    values: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    for name in names:
        values[name] = _regression_metric(name, truth, pred, notes)
    return MetricSet(values, notes)


def calibration_table(y_true: Any, y_score: Any, *, bins: int = 10) -> tuple[CalibrationBin, ...]:
    """Reliability table: ``bins`` equal-width score bins, the empty ones left out.

    ``y_true`` holds 0/1 (1 = positive).

    >>> [(b.rows, b.positive_rate) for b in calibration_table([0, 1, 1], [0.1, 0.9, 0.8], bins=2)]
    [(1, 0.0), (2, 1.0)]
    """
    truth, score = _checked_pair(y_true, y_score, "y_score")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(score, edges[1:-1], right=False), 0, bins - 1)
    table = []
    for i in range(bins):
        mask = index == i
        if mask.any():
            table.append(
                CalibrationBin(
                    float(edges[i]),
                    float(edges[i + 1]),
                    int(mask.sum()),
                    float(score[mask].mean()),
                    float(truth[mask].astype(float).mean()),
                )
            )
    return tuple(table)


def expected_calibration_error(y_true: Any, y_score: Any, *, bins: int = 10) -> float:
    """Row-weighted mean gap between score and positive rate over the reliability table.

    >>> expected_calibration_error([0, 1], [0.0, 1.0])
    0.0
    """
    table = calibration_table(y_true, y_score, bins=bins)
    rows = sum(b.rows for b in table)
    return float(sum(b.rows * b.gap for b in table) / rows)


def is_higher_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better.

    >>> is_higher_better("auc"), is_higher_better("rmse")
    (True, False)
    """
    if metric in HIGHER_IS_BETTER:
        return True
    if metric in LOWER_IS_BETTER:
        return False
    known = ", ".join(sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER))
    raise EvaluationError(f"unknown metric {metric!r}; use one of: {known}")


def _chosen(metrics: Sequence[str] | None, known: tuple[str, ...], task: str) -> tuple[str, ...]:
    if metrics is None:
        return known
    unknown = [m for m in metrics if m not in known]
    if unknown:
        raise EvaluationError(
            f"unknown {task} metric(s) {', '.join(map(repr, unknown))}; "
            f"use some of: {', '.join(known)}"
        )
    return tuple(metrics)


def _checked_pair(y_true: Any, y_other: Any, other_name: str) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(y_true)
    try:
        other = np.asarray(y_other, dtype=float)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(
            f"{other_name} is not numeric ({exc}); pass scores or predictions as numbers"
        ) from exc
    if truth.ndim != 1 or other.ndim != 1 or len(truth) != len(other):
        raise EvaluationError(
            f"y_true has shape {truth.shape} but {other_name} has shape {other.shape}; "
            "pass two one-dimensional arrays of the same length"
        )
    if len(truth) == 0:
        raise EvaluationError("y_true is empty; metrics need at least one row")
    _refuse_missing(other, other_name)
    if truth.dtype.kind == "f":
        _refuse_missing(truth, "y_true")
    return truth, other


def _refuse_missing(values: np.ndarray, name: str) -> None:
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise EvaluationError(
            f"{name} holds {bad} NaN or infinite value(s) out of {len(values)}; "
            "fix the model or drop those rows before evaluating"
        )


def _classification_metric(
    name: str, positive: np.ndarray, score: np.ndarray, threshold: float, notes: dict[str, str]
) -> float | None:
    from sklearn import metrics as sk

    predicted = (score >= threshold).astype(int)
    if name == "auc":
        if len(np.unique(positive)) < 2:
            notes["auc"] = "undefined: y_true holds only one class"
            return None
        return float(sk.roc_auc_score(positive, score))
    if name == "log_loss":
        return float(sk.log_loss(positive, score, labels=[0, 1]))
    if name == "accuracy":
        return float(sk.accuracy_score(positive, predicted))
    if name == "ece":
        return expected_calibration_error(positive, score)
    scorer = {"precision": sk.precision_score, "recall": sk.recall_score, "f1": sk.f1_score}
    return float(scorer[name](positive, predicted, zero_division=0.0))


def _regression_metric(
    name: str, truth: np.ndarray, pred: np.ndarray, notes: dict[str, str]
) -> float | None:
    from sklearn import metrics as sk

    if name == "mae":
        return float(sk.mean_absolute_error(truth, pred))
    if name == "rmse":
        return float(np.sqrt(sk.mean_squared_error(truth, pred)))
    if name == "r2":
        if len(truth) < 2 or np.all(truth == truth[0]):
            notes["r2"] = "undefined: y_true is constant"
            return None
        return float(sk.r2_score(truth, pred))
    zeros = int(np.count_nonzero(truth == 0))
    if zeros:
        notes["mape"] = f"undefined: y_true holds {zeros} zero(s)"
        return None
    return float(np.mean(np.abs((truth - pred) / truth)))
