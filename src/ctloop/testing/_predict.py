"""One way to ask any model for numbers: a ctloop ``Model``, a scikit-learn style
estimator (the positive-class probability of a binary classifier) or a function."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["as_frame", "predict"]


def as_frame(rows: Any) -> pd.DataFrame:
    """``rows`` (a DataFrame, a list of records or a dict of columns) as a DataFrame."""
    if isinstance(rows, pd.DataFrame):
        return rows
    return pd.DataFrame(rows)


def predict(model: Any, rows: Any) -> np.ndarray:
    """The model's numbers for ``rows``, as a float array when they are numbers.

    >>> predict(lambda frame: frame["x"] * 2, {"x": [1, 2]}).tolist()
    [2, 4]
    """
    from ctloop.artifacts.model import Model

    frame = as_frame(rows)
    if isinstance(model, Model):
        return np.asarray(model.predict(frame))
    if hasattr(model, "predict_proba"):
        probabilities = np.asarray(model.predict_proba(frame))
        return probabilities[:, 1] if probabilities.shape[1] == 2 else probabilities
    if hasattr(model, "predict"):
        return np.asarray(model.predict(frame))
    if callable(model):
        return np.asarray(model(frame))
    raise TypeError(
        f"cannot predict with a {type(model).__name__}: pass a ctloop Model, an estimator "
        "with predict or predict_proba, or a function of a DataFrame"
    )
