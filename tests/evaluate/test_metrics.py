"""Classification and regression metrics: hand-computed values and agreement with sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from ctloop.errors import EvaluationError
from ctloop.evaluate import classification_metrics, regression_metrics
from ctloop.evaluate._metrics import calibration_table, expected_calibration_error, is_higher_better

Y_TRUE = [0, 0, 1, 1, 1]
Y_SCORE = [0.1, 0.6, 0.4, 0.8, 0.9]


def test_classification_metrics_match_hand_computed_values() -> None:
    m = classification_metrics(Y_TRUE, Y_SCORE).values
    # predicted at 0.5: [0, 1, 0, 1, 1] -> tp 2, fp 1, fn 1, tn 1
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # positive/negative pairs ranked right: (0.4>0.1), (0.8>both), (0.9>both) -> 5 of 6
    assert m["auc"] == pytest.approx(5 / 6)
    expected_loss = -np.mean(np.log([0.9, 0.4, 0.4, 0.8, 0.9]))
    assert m["log_loss"] == pytest.approx(expected_loss)


def test_classification_metrics_agree_with_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    score = np.clip(0.3 * y + rng.uniform(0, 0.7, 300), 0, 1)
    m = classification_metrics(y, score).values
    assert m["auc"] == pytest.approx(sk.roc_auc_score(y, score))
    assert m["log_loss"] == pytest.approx(sk.log_loss(y, score))
    assert m["f1"] == pytest.approx(sk.f1_score(y, score >= 0.5))


def test_positive_label_picks_the_positive_class() -> None:
    m = classification_metrics(["late", "ok", "late"], [0.9, 0.2, 0.7], positive_label="late")
    assert m.values["auc"] == 1.0
    assert m.values["recall"] == 1.0


def test_single_class_gives_no_auc_and_says_why() -> None:
    m = classification_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert m.values["auc"] is None
    assert "one class" in m.notes["auc"]
    assert m.values["accuracy"] == pytest.approx(2 / 3)


def test_nan_scores_are_refused_with_their_count() -> None:
    with pytest.raises(EvaluationError, match="y_score holds 2 NaN"):
        classification_metrics([0, 1, 1], [np.nan, 0.5, np.nan])


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(EvaluationError, match=r"shape \(3,\).*shape \(2,\)"):
        regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0])


def test_scores_outside_zero_one_are_refused() -> None:
    with pytest.raises(EvaluationError, match="predict_proba"):
        classification_metrics([0, 1], [0.2, 3.0])


def test_unknown_metric_is_refused_naming_it() -> None:
    with pytest.raises(EvaluationError, match=r"'auc'.*mae"):
        regression_metrics([1.0], [1.0], metrics=["auc"])


def test_regression_metrics_match_hand_computed_values() -> None:
    m = regression_metrics([2.0, 4.0, 6.0], [3.0, 4.0, 4.0]).values
    assert m["mae"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert m["r2"] == pytest.approx(1 - 5 / 8)
    assert m["mape"] == pytest.approx((0.5 + 0 + 1 / 3) / 3)


def test_regression_metrics_agree_with_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.uniform(1, 10, 200)
    pred = y + rng.normal(0, 1, 200)
    m = regression_metrics(y, pred).values
    assert m["r2"] == pytest.approx(sk.r2_score(y, pred))
    assert m["mape"] == pytest.approx(sk.mean_absolute_percentage_error(y, pred))
    assert m["rmse"] == pytest.approx(sk.root_mean_squared_error(y, pred))


def test_mape_with_a_zero_target_is_undefined() -> None:
    m = regression_metrics([0.0, 1.0], [0.5, 1.0])
    assert m.values["mape"] is None
    assert "1 zero" in m.notes["mape"]


def test_reliability_table_and_ece_by_hand() -> None:
    table = calibration_table([0, 1, 0, 1], [0.2, 0.4, 0.6, 0.8], bins=2)
    assert [(b.rows, b.mean_score, b.positive_rate) for b in table] == [
        (2, pytest.approx(0.3), 0.5),
        (2, pytest.approx(0.7), 0.5),
    ]
    assert expected_calibration_error([0, 1, 0, 1], [0.2, 0.4, 0.6, 0.8], bins=2) == (
        pytest.approx(0.2)
    )


def test_perfectly_calibrated_scores_have_zero_ece() -> None:
    assert classification_metrics([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0]).values["ece"] == 0.0


def test_direction_is_known_per_metric() -> None:
    assert is_higher_better("r2") and not is_higher_better("ece")
    with pytest.raises(EvaluationError, match="unknown metric 'speed'"):
        is_higher_better("speed")
