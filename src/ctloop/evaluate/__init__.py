"""Evaluating models: metrics overall and per slice, attributions, and the gate.

>>> import pandas as pd
>>> from sklearn.dummy import DummyRegressor
>>> from ctloop.evaluate import SliceSpec, evaluate_model, gate
>>> data = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0, 3.0, 4.0]})
>>> model = DummyRegressor().fit(data[["x"]], data["y"])
>>> ev = evaluate_model(model, data, label="y", task="regression", metrics=["mae"])
>>> ev.metrics
{'mae': 1.0}
>>> gate(ev, None, absolute=["mae <= 2"]).passed
True
"""

from __future__ import annotations

from ctloop.evaluate._attribution import FeatureAttribution, permutation_importance
from ctloop.evaluate._contributions import FeatureContribution
from ctloop.evaluate._gate import Blessing, ChangeThreshold, Comparison, Threshold, gate
from ctloop.evaluate._metrics import (
    CalibrationBin,
    MetricSet,
    classification_metrics,
    regression_metrics,
)
from ctloop.evaluate._report import Evaluation, evaluate_model
from ctloop.evaluate._slices import SliceResult, SliceSpec

__all__ = [
    "Blessing",
    "CalibrationBin",
    "ChangeThreshold",
    "Comparison",
    "Evaluation",
    "FeatureAttribution",
    "FeatureContribution",
    "MetricSet",
    "SliceResult",
    "SliceSpec",
    "Threshold",
    "classification_metrics",
    "evaluate_model",
    "gate",
    "permutation_importance",
    "regression_metrics",
]
