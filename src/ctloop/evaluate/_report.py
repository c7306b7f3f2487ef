"""Evaluating a model on a held-out set: overall, per slice, and by feature.

>>> import pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> data = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "c": ["a", "b", "a", "b"], "y": [0, 0, 1, 1]})
>>> model = LogisticRegression().fit(data[["x"]], data["y"])
>>> ev = evaluate_model(model, data[["x", "y"]], label="y", metrics=["auc"])
>>> ev.metrics
{'auc': 1.0}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ctloop.errors import EvaluationError
from ctloop.evaluate._attribution import (
    FeatureAttribution,
    check_task,
    is_ctloop_model,
    model_predictions,
    permutation_importance,
)
from ctloop.evaluate._contributions import FeatureContribution, native_contributions
from ctloop.evaluate._metrics import (
    CalibrationBin,
    MetricSet,
    calibration_table,
    classification_metrics,
    regression_metrics,
)
from ctloop.evaluate._slices import SliceResult, SliceSpec, slice_rows

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Evaluation:
    """A model's metrics on a held-out set, overall and per slice, with attributions.

    ``slices`` maps a slice name (``"carrier"``) to its results, one per value.
    ``contributions`` holds native per-feature contributions (XGBoost, LightGBM);
    ``baseline`` is the evaluation of another model (the champion) on the same rows,
    so that a gate compares like with like.

    >>> ev = Evaluation("regression", "y", 3, {"mae": 1.0})
    >>> Evaluation.from_dict(ev.to_dict()) == ev
    True
    """

    __ctloop_artifact__ = "Evaluation"  # artifact type, see ctloop.artifacts.records

    task: str
    label: str
    rows: int
    metrics: dict[str, float | None]
    notes: dict[str, str] = field(default_factory=dict)
    slices: dict[str, tuple[SliceResult, ...]] = field(default_factory=dict)
    attributions: tuple[FeatureAttribution, ...] = ()
    calibration: tuple[CalibrationBin, ...] = ()
    contributions: tuple[FeatureContribution, ...] = ()
    baseline: Evaluation | None = None

    def slice(self, name: str, value: str) -> SliceResult | None:
        """The result for one slice value, or None when the evaluation has no such slice.

        >>> Evaluation("regression", "y", 3, {}).slice("carrier", "UA") is None
        True
        """
        return next((r for r in self.slices.get(name, ()) if r.value == value), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return {
            "version": FORMAT_VERSION,
            "task": self.task,
            "label": self.label,
            "rows": self.rows,
            "metrics": dict(self.metrics),
            "notes": dict(self.notes),
            "slices": {k: [r.to_dict() for r in v] for k, v in self.slices.items()},
            "attributions": [a.to_dict() for a in self.attributions],
            "calibration": [b.to_dict() for b in self.calibration],
            "contributions": [c.to_dict() for c in self.contributions],
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """Read what ``to_dict`` wrote."""
        slices = data.get("slices", {})
        baseline = data.get("baseline")
        return cls(
            task=data["task"],
            label=data["label"],
            rows=int(data["rows"]),
            metrics=dict(data["metrics"]),
            notes=dict(data.get("notes", {})),
            slices={k: tuple(SliceResult.from_dict(r) for r in v) for k, v in slices.items()},
            attributions=tuple(
                FeatureAttribution.from_dict(a) for a in data.get("attributions", [])
            ),
            calibration=tuple(CalibrationBin.from_dict(b) for b in data.get("calibration", [])),
            contributions=tuple(
                FeatureContribution.from_dict(c) for c in data.get("contributions", [])
            ),
            baseline=None if baseline is None else cls.from_dict(baseline),
        )


def evaluate_model(
    model: Any,
    data: pd.DataFrame,
    *,
    label: str,
    task: str | None = None,
    slices: Sequence[SliceSpec] = (),
    metrics: Sequence[str] | None = None,
    positive_label: Any = 1,
    features: Sequence[str] | None = None,
    attributions: bool = False,
    attribution_metric: str | None = None,
    random_state: int = 0,
    contributions: bool = False,
    baseline: Any = None,
) -> Evaluation:
    """Score ``model`` on ``data`` (features plus the ``label`` column).

    Classifiers are scored from ``predict_proba`` for ``positive_label``; regressors from
    ``predict``. The model sees ``features``: by default the columns it was fitted on
    (``feature_names_in_``) or else every column but the label, so slice columns the model
    does not use may stay in ``data``. ``attributions=True`` adds permutation importance
    of every feature; ``contributions=True`` the native contributions of XGBoost and
    LightGBM models.

    ``model`` is a fitted estimator or a :class:`ctloop.artifacts.model.Model`; a
    ``Model`` brings its task (the default for ``task``; else ``"classification"``) and
    its input columns. ``baseline`` is another model (the champion), scored the same way
    on the same rows into ``Evaluation.baseline``.

    >>> evaluate_model(None, pd.DataFrame({"x": [1]}), label="y")
    Traceback (most recent call last):
    ...
    ctloop.errors.EvaluationError: label column 'y' is not in the data (columns: x); pass label= with the column that holds the true values
    """
    task = task or (model.task if is_ctloop_model(model) else "classification")
    check_task(task)
    inputs, truth = _split_label(data, label, _feature_names(model, features, label))
    predicted = _predict(model, inputs, task, positive_label)
    overall = _metric_set(truth, predicted, task, metrics, positive_label)
    found = {
        spec.name: _slice_results(spec, data, truth, predicted, task, metrics, positive_label)
        for spec in slices
    }
    if len(found) < len(slices):
        raise EvaluationError("two slices share one name; give each SliceSpec its own label=")
    return Evaluation(
        task=task,
        label=label,
        rows=len(data),
        metrics=dict(overall.values),
        notes=dict(overall.notes),
        slices=found,
        attributions=_attributions(
            model,
            inputs,
            truth,
            task,
            attributions,
            attribution_metric,
            positive_label,
            random_state,
        ),
        calibration=_calibration(truth, predicted, task, positive_label),
        contributions=native_contributions(model, inputs) if contributions else (),
        baseline=_baseline(baseline, data, label, task, slices, metrics, positive_label, features),
    )


def _baseline(
    baseline: Any,
    data: pd.DataFrame,
    label: str,
    task: str,
    slices: Sequence[SliceSpec],
    metrics: Sequence[str] | None,
    positive_label: Any,
    features: Sequence[str] | None,
) -> Evaluation | None:
    if baseline is None:
        return None
    return evaluate_model(
        baseline,
        data,
        label=label,
        task=task,
        slices=slices,
        metrics=metrics,
        positive_label=positive_label,
        features=None if is_ctloop_model(baseline) else features,
    )


def _feature_names(model: Any, features: Sequence[str] | None, label: str) -> list[str] | None:
    if features is not None:
        return list(features)
    if is_ctloop_model(model):
        return [name for name in model.signature.input_names if name != label]
    fitted = getattr(model, "feature_names_in_", None)
    return None if fitted is None else [str(name) for name in fitted if name != label]


def _split_label(
    data: pd.DataFrame, label: str, features: list[str] | None
) -> tuple[pd.DataFrame, np.ndarray]:
    columns = ", ".join(map(str, data.columns))
    if label not in data.columns:
        raise EvaluationError(
            f"label column {label!r} is not in the data (columns: {columns}); pass label= "
            "with the column that holds the true values"
        )
    missing = [name for name in features or () if name not in data.columns]
    if missing:
        raise EvaluationError(
            f"feature column(s) {', '.join(map(repr, missing))} are not in the data (columns: "
            f"{columns}); add them, or pass features= with the columns the model needs"
        )
    inputs = data.drop(columns=[label]) if features is None else data[features]
    return inputs, data[label].to_numpy()


def _predict(model: Any, inputs: pd.DataFrame, task: str, positive_label: Any) -> np.ndarray:
    try:
        return model_predictions(model, inputs, task=task, positive_label=positive_label)
    except EvaluationError:
        raise
    except Exception as exc:
        raise EvaluationError(
            f"the model could not predict on the held-out data ({type(exc).__name__}: {exc}); "
            "pass features= with the columns it was fitted on"
        ) from exc


def _metric_set(
    truth: np.ndarray,
    predicted: np.ndarray,
    task: str,
    metrics: Sequence[str] | None,
    positive_label: Any,
) -> MetricSet:
    if task == "classification":
        return classification_metrics(
            truth, predicted, positive_label=positive_label, metrics=metrics
        )
    return regression_metrics(truth, predicted, metrics=metrics)


def _slice_results(
    spec: SliceSpec,
    data: pd.DataFrame,
    truth: np.ndarray,
    predicted: np.ndarray,
    task: str,
    metrics: Sequence[str] | None,
    positive_label: Any,
) -> tuple[SliceResult, ...]:
    results = []
    for value, rows in slice_rows(data, spec):
        if len(rows) < spec.min_rows:
            skipped = f"too few rows ({len(rows)} < min_rows {spec.min_rows})"
            results.append(SliceResult(value, len(rows), skipped=skipped))
            continue
        found = _metric_set(truth[rows], predicted[rows], task, metrics, positive_label)
        results.append(SliceResult(value, len(rows), dict(found.values), dict(found.notes)))
    return tuple(results)


_ATTRIBUTION_ROWS = 2000
"""Permutation importance is computed on at most this many held-out rows."""


def _attributions(
    model: Any,
    features: pd.DataFrame,
    truth: np.ndarray,
    task: str,
    wanted: bool,
    metric: str | None,
    positive_label: Any,
    random_state: int,
) -> tuple[FeatureAttribution, ...]:
    if not wanted:
        return ()
    if len(features) > _ATTRIBUTION_ROWS:  # a sample ranks features as well, far sooner
        rows = np.random.default_rng(random_state).choice(
            len(features), _ATTRIBUTION_ROWS, replace=False
        )
        features, truth = features.iloc[np.sort(rows)], np.asarray(truth)[np.sort(rows)]
    return permutation_importance(
        model,
        features,
        truth,
        task=task,
        metric=metric,
        positive_label=positive_label,
        random_state=random_state,
    )


def _calibration(
    truth: np.ndarray, predicted: np.ndarray, task: str, positive_label: Any
) -> tuple[CalibrationBin, ...]:
    if task != "classification":
        return ()
    return calibration_table((truth == positive_label).astype(int), predicted)
