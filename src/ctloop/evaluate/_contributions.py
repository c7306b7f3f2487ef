"""Native per-row feature contributions of tree ensembles, summarised per feature.

XGBoost (``pred_contribs=True``) and LightGBM (``pred_contrib=True``) compute each row's
SHAP-style contribution of every feature exactly and cheaply; the summary is the mean
absolute contribution per feature over the held-out rows (in the model's raw output
units: log-odds for classifiers). Other models have no such native method and get an
empty tuple (permutation importance covers them).

>>> native_contributions(object(), None)
()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ctloop.evaluate._attribution import is_ctloop_model

MAX_ROWS = 10_000  # contributions cost a tree walk per row: a sample says as much


@dataclass(frozen=True)
class FeatureContribution:
    """Mean absolute contribution of ``feature`` to the raw prediction, and by what method.

    >>> FeatureContribution("distance", 0.31, "xgboost").to_dict()["mean_abs"]
    0.31
    """

    feature: str
    mean_abs: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureContribution:
        """Read what ``to_dict`` wrote."""
        return cls(**data)


def native_contributions(
    model: Any, features: pd.DataFrame | None, *, max_rows: int = MAX_ROWS
) -> tuple[FeatureContribution, ...]:
    """Mean |contribution| per feature of an XGBoost or LightGBM model, largest first.

    ``model`` is a fitted estimator or a :class:`ctloop.artifacts.model.Model`; any other
    kind of model gives ``()``.
    """
    if features is None:
        return ()
    if is_ctloop_model(model):
        model, features = model.estimator, model.prepare(features, allow_extra=True)
    sample = features.head(max_rows)
    found = _xgboost(model, sample) or _lightgbm(model, sample)
    if found is None:
        return ()
    raw, method = found
    return _summary(raw, [str(c) for c in sample.columns], method)


def _class_names(model: Any) -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in type(model).__mro__}


def _xgboost(model: Any, sample: pd.DataFrame) -> tuple[np.ndarray, str] | None:
    names = _class_names(model)
    if "xgboost.sklearn.XGBModel" in names:
        booster = model.get_booster()
    elif "xgboost.core.Booster" in names:
        booster = model
    else:
        return None
    import xgboost

    matrix = xgboost.DMatrix(sample, enable_categorical=True)
    return np.asarray(booster.predict(matrix, pred_contribs=True)), "xgboost"


def _lightgbm(model: Any, sample: pd.DataFrame) -> tuple[np.ndarray, str] | None:
    names = _class_names(model)
    if "lightgbm.sklearn.LGBMModel" in names:
        booster = model.booster_
    elif "lightgbm.basic.Booster" in names:
        booster = model
    elif "ctloop.artifacts.model._flavors.LightGBMModel" in names:
        booster = model.booster
    else:
        return None
    return np.asarray(booster.predict(sample, pred_contrib=True)), "lightgbm"


def _summary(raw: np.ndarray, columns: list[str], method: str) -> tuple[FeatureContribution, ...]:
    width = len(columns) + 1  # the last column of each block is the bias
    if raw.ndim == 2 and raw.shape[1] != width and raw.shape[1] % width == 0:
        raw = raw.reshape(raw.shape[0], -1, width)  # LightGBM multiclass: blocks per class
    per_feature = np.abs(raw[..., : len(columns)]).reshape(-1, len(columns)).mean(axis=0)
    found = [
        FeatureContribution(name, float(value), method)
        for name, value in zip(columns, per_feature, strict=True)
    ]
    return tuple(sorted(found, key=lambda c: -c.mean_abs))
