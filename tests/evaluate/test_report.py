"""evaluate_model: overall and per-slice metrics, attributions, and the record's round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from ctloop.errors import EvaluationError
from ctloop.evaluate import Evaluation, SliceSpec, evaluate_model


def _flights(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    delay = rng.normal(size=rows)
    return pd.DataFrame(
        {
            "dep_delay": delay,
            "distance": rng.uniform(0, 2000, rows),
            "carrier": rng.choice(["UA", "AA", "DL"], rows, p=[0.5, 0.45, 0.05]),
            "late": (delay + 0.5 * rng.normal(size=rows) > 0).astype(int),
        }
    )


def _model(data: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(data[["dep_delay", "distance"]], data["late"])


def test_overall_and_per_slice_metrics() -> None:
    data = _flights()
    ev = evaluate_model(
        _model(data),
        data[["dep_delay", "distance", "late"]].assign(carrier=data["carrier"]),
        label="late",
        slices=[SliceSpec("carrier", min_rows=20), SliceSpec("distance", bins=[0, 1000, 2000])],
    )
    assert ev.rows == 300 and ev.metrics["auc"] is not None and ev.metrics["auc"] > 0.8
    by_carrier = {r.value: r for r in ev.slices["carrier"]}
    assert by_carrier["DL"].skipped is not None and "too few rows" in by_carrier["DL"].skipped
    assert by_carrier["DL"].metrics == {}
    assert by_carrier["UA"].scored and set(by_carrier["UA"].metrics) == set(ev.metrics)
    assert sum(r.rows for r in ev.slices["distance"]) == 300
    assert sum(b.rows for b in ev.calibration) == 300


def test_features_default_to_the_columns_the_model_was_fitted_on() -> None:
    data = _flights()
    model = LogisticRegression().fit(data[["dep_delay"]], data["late"])
    ev = evaluate_model(model, data, label="late", metrics=["accuracy"])
    assert list(ev.metrics) == ["accuracy"] and ev.metrics["accuracy"] > 0.7


def test_features_can_be_named() -> None:
    data = _flights()
    model = LinearRegression().fit(data[["dep_delay"]], data["late"])
    ev = evaluate_model(model, data, label="late", task="regression", features=["dep_delay"])
    assert ev.metrics["rmse"] is not None and ev.metrics["rmse"] < 0.5


def test_a_model_that_cannot_predict_says_which_columns_to_pass() -> None:
    data = _flights()
    model = LogisticRegression().fit(data[["dep_delay"]].to_numpy(), data["late"])
    with pytest.raises(EvaluationError, match=r"could not predict.*features="):
        evaluate_model(model, data.drop(columns=["carrier"]), label="late")


def test_missing_feature_column_is_named() -> None:
    with pytest.raises(EvaluationError, match="'speed' are not in the data"):
        evaluate_model(None, _flights(), label="late", features=["speed"])


def test_regression_with_attributions() -> None:
    data = _flights()[["dep_delay", "distance"]].assign(minutes=lambda d: 10 * d["dep_delay"] + 3.0)
    model = LinearRegression().fit(data[["dep_delay", "distance"]], data["minutes"])
    ev = evaluate_model(model, data, label="minutes", task="regression", attributions=True)
    assert ev.metrics["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert ev.attributions[0].feature == "dep_delay"
    assert ev.calibration == ()


def test_record_round_trips_through_json() -> None:
    data = _flights()
    ev = evaluate_model(
        _model(data),
        data[["dep_delay", "distance", "late", "carrier"]],
        label="late",
        slices=[SliceSpec("carrier", min_rows=20)],
        attributions=True,
    )
    assert Evaluation.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev
    assert Evaluation.__ctloop_artifact__ == "Evaluation"


def test_unknown_task_is_refused() -> None:
    with pytest.raises(EvaluationError, match="unknown task 'ranking'"):
        evaluate_model(None, _flights(), label="late", task="ranking")
