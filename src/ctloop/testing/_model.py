"""Model tests: finite predictions, same seed same model, training converges, a tiny
batch can be learnt, invariance and directional expectations, quality in every slice.

>>> import pandas as pd
>>> double = lambda frame: frame["x"] * 2.0
>>> expect_direction(double, pd.DataFrame({"x": [1.0, 2.0]}), "x", increases=True)
>>> expect_invariant(double, pd.DataFrame({"x": [1.0], "name": ["a"]}), change={"name": "b"})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ctloop.testing._failures import CheckFailed, describe_rows
from ctloop.testing._predict import as_frame, predict

__all__ = [
    "check_finite_predictions",
    "check_loss_decreases",
    "check_overfits_tiny_batch",
    "check_same_seed_same_model",
    "check_slice_quality",
    "expect_direction",
    "expect_invariant",
]


def check_finite_predictions(model: Any, rows: Any) -> np.ndarray:
    """Raise :class:`CheckFailed` when a prediction for ``rows`` is NaN or infinite,
    naming how many and which rows; else return the predictions."""
    frame = as_frame(rows)
    values = np.asarray(predict(model, frame), dtype=float)
    flat = values.reshape(len(frame), -1) if len(frame) else values
    bad = ~np.isfinite(flat).all(axis=1) if flat.ndim == 2 else ~np.isfinite(flat)
    if bad.any():
        rows_bad = list(frame.index[bad])
        nan = (
            int(np.isnan(flat).any(axis=-1).sum()) if flat.ndim == 2 else int(np.isnan(flat).sum())
        )
        raise CheckFailed(
            "finite_predictions",
            f"{len(rows_bad)} of {len(frame)} predictions are NaN or infinite "
            f"({nan} NaN; {describe_rows(rows_bad)})",
        )
    return values


def check_same_seed_same_model(
    train: Callable[[int], Any], rows: Any, *, seed: int = 0, tolerance: float = 0.0
) -> None:
    """Train twice with ``train(seed)`` and raise :class:`CheckFailed` when the two
    models' predictions for ``rows`` differ by more than ``tolerance``, naming the rows
    and the largest difference."""
    frame = as_frame(rows)
    first = np.asarray(predict(train(seed), frame), dtype=float)
    second = np.asarray(predict(train(seed), frame), dtype=float)
    difference = np.abs(first - second).reshape(len(frame), -1).max(axis=1)
    differ = difference > tolerance
    if differ.any():
        raise CheckFailed(
            "same_seed_same_model",
            f"two models trained with seed {seed} predict differently for {int(differ.sum())} "
            f"of {len(frame)} rows (largest difference {difference.max():.6g} > tolerance "
            f"{tolerance:g}; {describe_rows(list(frame.index[differ]))})",
        )


def check_loss_decreases(losses: Sequence[float], *, min_relative_drop: float = 0.0) -> None:
    """Raise :class:`CheckFailed` unless the last of ``losses`` (one per iteration or
    epoch) is below the first by more than ``min_relative_drop`` (0.1: ten per cent)
    and no loss is NaN, naming the numbers.

    >>> check_loss_decreases([0.69, 0.52, 0.41], min_relative_drop=0.2)
    """
    values = [float(v) for v in losses]
    if len(values) < 2:
        raise CheckFailed("loss_decreases", f"needs at least 2 losses, got {len(values)}")
    not_finite = [i for i, v in enumerate(values) if not np.isfinite(v)]
    if not_finite:
        raise CheckFailed(
            "loss_decreases", f"the loss is NaN or infinite at iteration {not_finite[0]}"
        )
    first, last = values[0], values[-1]
    drop = (first - last) / abs(first) if first else last < first
    if not last < first or drop <= min_relative_drop:
        worst = int(np.argmax(np.diff(values)))
        raise CheckFailed(
            "loss_decreases",
            f"the loss went from {first:.6g} (iteration 0) to {last:.6g} (iteration "
            f"{len(values) - 1}), a drop of {float(drop):.1%}, not more than the required "
            f"{min_relative_drop:.1%}; the largest rise is at iteration {worst + 1}",
        )


def check_overfits_tiny_batch(
    train: Callable[[pd.DataFrame, Any], Any],
    rows: Any,
    labels: Any,
    *,
    min_score: float = 0.95,
) -> None:
    """Fit ``train(rows, labels)`` on a tiny batch and raise :class:`CheckFailed` when
    the model does not learn it: accuracy (classes) or R² (numbers) on those same rows
    under ``min_score``. A model that cannot memorise 20 rows has a bug."""
    frame = as_frame(rows)
    y = np.asarray(labels)
    predicted = _labels(train(frame, y), frame)
    if y.dtype.kind in "biuO" and len(np.unique(y)) <= 20:
        name, score = "accuracy", float((predicted == y).mean())
    else:
        residual = float(((y - predicted) ** 2).sum())
        total = float(((y - y.mean()) ** 2).sum()) or 1.0
        name, score = "r2", 1.0 - residual / total
    if score < min_score:
        raise CheckFailed(
            "overfits_tiny_batch",
            f"on the {len(frame)} rows it was trained on, {name} is {score:.4f} < {min_score}",
        )


def _labels(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """Classes of a classifier, values of a regressor (not probabilities)."""
    from ctloop.artifacts.model import Model

    if isinstance(model, Model):
        if model.task == "classification":
            return np.asarray(model.predict_labels(frame))
        return np.asarray(model.predict(frame))
    if hasattr(model, "predict"):
        return np.asarray(model.predict(frame))
    return np.asarray(predict(model, frame))


def expect_invariant(
    model: Any, rows: Any, *, change: Mapping[str, Any], tolerance: float = 1e-9
) -> None:
    """Raise :class:`CheckFailed` when changing the columns of ``change`` (a value, or
    a function of the column) moves a prediction by more than ``tolerance``, naming the
    rows, the features and the largest move.

    >>> expect_invariant(model, rows, change={"name": "Alex"})  # doctest: +SKIP
    """
    frame = as_frame(rows)
    changed = _changed(frame, change)
    moved = _compare(model, frame, changed)
    bad = moved > tolerance
    if bad.any():
        raise CheckFailed(
            "invariant",
            f"changing {', '.join(repr(c) for c in change)} moved {int(bad.sum())} of "
            f"{len(frame)} predictions by more than {tolerance:g} (largest move "
            f"{moved.max():.6g}; {describe_rows(list(frame.index[bad]))})",
        )


def expect_direction(
    model: Any,
    rows: Any,
    feature: str,
    *,
    increases: bool = True,
    by: float | None = None,
    tolerance: float = 0.0,
) -> None:
    """Raise :class:`CheckFailed` when raising ``feature`` by ``by`` (default: one
    standard deviation of it in ``rows``, or 1) does not move each prediction in the
    expected direction (up when ``increases``, else down); a move against it of at most
    ``tolerance`` is allowed. The message names the rows and the largest wrong move.

    >>> expect_direction(model, rows, "dep_delay", increases=True)  # doctest: +SKIP
    """
    frame = as_frame(rows)
    if feature not in frame.columns:
        raise CheckFailed("direction", f"column {feature!r} is not in the rows")
    step = by if by is not None else float(frame[feature].std(ddof=0) or 1.0)
    changed = frame.copy()
    changed[feature] = frame[feature] + step
    before = np.asarray(predict(model, frame), dtype=float).reshape(len(frame), -1)[:, -1]
    after = np.asarray(predict(model, changed), dtype=float).reshape(len(frame), -1)[:, -1]
    wrong = (before - after) if increases else (after - before)
    bad = wrong > tolerance
    if bad.any():
        direction = "rise" if increases else "fall"
        raise CheckFailed(
            "direction",
            f"raising {feature!r} by {step:g} should make predictions {direction}, but "
            f"{int(bad.sum())} of {len(frame)} moved the other way (largest wrong move "
            f"{wrong.max():.6g}; {describe_rows(list(frame.index[bad]))})",
        )


_HIGHER_IS_BETTER = {"auc": True, "accuracy": True, "r2": True, "rmse": False, "mae": False}


def check_slice_quality(
    model: Any,
    data: pd.DataFrame,
    *,
    label: str,
    by: str | Sequence[str],
    metric: str = "auc",
    threshold: float,
    min_rows: int = 30,
) -> dict[str, float]:
    """Raise :class:`CheckFailed` when ``metric`` (auc, accuracy, r2: at least
    ``threshold``; rmse, mae: at most) misses its threshold overall or in a slice of
    ``data`` by the values of ``by`` with at least ``min_rows`` rows, naming each slice,
    its rows and its value; else return the value per slice (``"all"`` overall)."""
    if metric not in _HIGHER_IS_BETTER:
        raise ValueError(f"metric {metric!r} is not one of {', '.join(_HIGHER_IS_BETTER)}")
    columns = [by] if isinstance(by, str) else list(by)
    for column in [label, *columns]:
        if column not in data.columns:
            raise CheckFailed("slice_quality", f"column {column!r} is not in the data")
    scores = {"all": _score(metric, data[label], predict(model, data.drop(columns=[label])))}
    for key, group in data.groupby(columns, observed=True, sort=True):
        if len(group) >= min_rows and group[label].nunique() > (1 if metric == "auc" else 0):
            values = key if isinstance(key, tuple) else (key,)
            name = ", ".join(f"{c}={v}" for c, v in zip(columns, values, strict=True))
            scores[name] = _score(metric, group[label], predict(model, group.drop(columns=[label])))
    higher = _HIGHER_IS_BETTER[metric]
    failed = {k: v for k, v in scores.items() if (v < threshold if higher else v > threshold)}
    if failed:
        sizes = _sizes(data, columns)
        word = "at least" if higher else "at most"
        details = "; ".join(
            f"{name} ({sizes.get(name, len(data))} rows): {metric} {value:.4f}"
            for name, value in failed.items()
        )
        raise CheckFailed(
            "slice_quality",
            f"{len(failed)} of {len(scores)} slices miss {metric} {word} {threshold}: {details}",
        )
    return scores


def _sizes(data: pd.DataFrame, columns: list[str]) -> dict[str, int]:
    sizes = {}
    for key, group in data.groupby(columns, observed=True):
        values = key if isinstance(key, tuple) else (key,)
        sizes[", ".join(f"{c}={v}" for c, v in zip(columns, values, strict=True))] = len(group)
    return sizes


def _score(metric: str, truth: Any, predicted: Any) -> float:
    from sklearn import metrics

    y, p = np.asarray(truth), np.asarray(predicted)
    if metric == "auc":
        return float(metrics.roc_auc_score(y, p))
    if metric == "accuracy":
        classes = (p >= 0.5).astype(int) if p.dtype.kind == "f" and y.dtype.kind in "biu" else p
        return float((classes == y).mean())
    if metric == "r2":
        return float(metrics.r2_score(y, p))
    if metric == "rmse":
        return float(np.sqrt(metrics.mean_squared_error(y, p)))
    return float(metrics.mean_absolute_error(y, p))


def _changed(frame: pd.DataFrame, change: Mapping[str, Any]) -> pd.DataFrame:
    changed = frame.copy()
    for column, value in change.items():
        if column not in frame.columns:
            raise CheckFailed("invariant", f"column {column!r} is not in the rows")
        changed[column] = value(frame[column]) if callable(value) else value
    return changed


def _compare(model: Any, before: pd.DataFrame, after: pd.DataFrame) -> np.ndarray:
    first = np.asarray(predict(model, before), dtype=float).reshape(len(before), -1)
    second = np.asarray(predict(model, after), dtype=float).reshape(len(before), -1)
    moved: np.ndarray = np.abs(first - second).max(axis=1)
    return moved
