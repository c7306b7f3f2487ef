"""Permutation importance finds the informative feature (a generated table with a known answer)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression

from ctloop.errors import EvaluationError
from ctloop.evaluate import permutation_importance
from ctloop.evaluate._attribution import model_predictions


def _table(rows: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(11)
    features = pd.DataFrame({"noise": rng.normal(size=rows), "signal": rng.normal(size=rows)})
    label = (features["signal"] + 0.3 * rng.normal(size=rows) > 0).astype(int).to_numpy()
    return features, label


def test_informative_feature_ranks_above_noise_for_a_classifier() -> None:
    features, label = _table()
    model = RandomForestClassifier(n_estimators=30, random_state=0).fit(features, label)
    found = permutation_importance(model, features, label, n_repeats=3)
    assert [a.feature for a in found] == ["signal", "noise"]
    assert found[0].metric == "auc"
    assert found[0].mean_drop > 0.2 > abs(found[1].mean_drop)


def test_lower_is_better_metric_reports_a_positive_drop() -> None:
    features, _ = _table()
    target = 2.0 * features["signal"].to_numpy()
    model = LinearRegression().fit(features, target)
    found = permutation_importance(model, features, target, task="regression", metric="mae")
    assert found[0].feature == "signal" and found[0].mean_drop > 1.0


class _ThresholdModel:
    """Not a scikit-learn estimator: only ``predict``."""

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return (features["signal"] > 0).astype(int).to_numpy()


def test_any_model_with_predict_works() -> None:
    features, label = _table()
    found = permutation_importance(_ThresholdModel(), features, label, metric="accuracy")
    assert found[0].feature == "signal"


def test_unknown_positive_label_is_refused() -> None:
    features, label = _table()
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(features, label)
    with pytest.raises(EvaluationError, match="positive_label 'yes'"):
        model_predictions(model, features, task="classification", positive_label="yes")
