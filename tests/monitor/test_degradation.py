"""A window is degraded by a relative drop beyond its own sampling noise, not by units."""

from __future__ import annotations

import numpy as np
import pytest

from ctloop.errors import MonitorError
from ctloop.monitor import MonitorSettings
from ctloop.monitor._analysis import decide
from ctloop.monitor._checks import performance


def _prices(rows: int, error: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.normal(100.0, 15.0, rows)
    return truth, truth + rng.normal(0.0, error, rows)


def _scores(rows: int, separation: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    return labels, 1 / (1 + np.exp(-(labels * separation + rng.normal(size=rows))))


def test_a_five_cent_rise_in_error_on_prices_of_a_hundred_is_not_degraded() -> None:
    truth, predicted = _prices(2000, 10.0)
    rmse = float(np.sqrt(np.mean((truth - predicted) ** 2)))
    found = performance(
        truth,
        predicted,
        task="regression",
        baseline={"rmse": rmse - 0.05},
        settings=MonitorSettings(),
    )
    assert found["drop"] == pytest.approx(0.05) and not found["degraded"]


def test_a_twenty_percent_relative_drop_is_degraded_and_says_so() -> None:
    labels, scores = _scores(2000, 0.5)
    window = performance(labels, scores, task="classification", baseline={"auc": 1.0},
                         settings=MonitorSettings(confidence=None))["value"]  # fmt: skip
    found = performance(
        labels, scores, task="classification", baseline={"auc": window / 0.8},
        settings=MonitorSettings(),
    )  # fmt: skip
    assert found["relative_drop"] == pytest.approx(0.2) and found["degraded"]
    verdict, reasons = decide(2000, skew=None, drift=None, performance=found, attribution=None,
                              settings=MonitorSettings())  # fmt: skip
    assert verdict == "degraded" and "20.0% worse > 5.0%" in reasons[0]


def test_a_small_window_within_its_noise_is_not_degraded() -> None:
    labels, scores = _scores(60, 1.0, seed=4)
    window = performance(labels, scores, task="classification", baseline={"auc": 1.0},
                         settings=MonitorSettings(confidence=None))["value"]  # fmt: skip
    baseline = {"auc": window / 0.92}  # 8 % worse: beyond 5 %, but within 60 rows' noise
    noisy = performance(labels, scores, task="classification", baseline=baseline,
                        settings=MonitorSettings())  # fmt: skip
    assert noisy["within_noise"] and not noisy["degraded"]
    assert noisy["interval"][0] < baseline["auc"] < noisy["interval"][1]
    unchecked = performance(labels, scores, task="classification", baseline=baseline,
                            settings=MonitorSettings(confidence=None))  # fmt: skip
    assert unchecked["degraded"]


def test_absolute_drops_are_still_available_and_bad_rules_are_named() -> None:
    truth, predicted = _prices(2000, 10.0)
    rmse = float(np.sqrt(np.mean((truth - predicted) ** 2)))
    absolute = MonitorSettings(drop_is="absolute", allowed_drop=0.01, confidence=None)
    found = performance(truth, predicted, task="regression", baseline={"rmse": rmse - 0.05},
                        settings=absolute)  # fmt: skip
    assert found["degraded"]
    with pytest.raises(MonitorError, match="'monitoring: drop_is' is 'percent'"):
        MonitorSettings.from_mapping({"drop_is": "percent"})
    with pytest.raises(MonitorError, match="'monitoring: confidence' is 95"):
        MonitorSettings.from_mapping({"confidence": 95})
