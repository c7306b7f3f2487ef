"""The monitoring checks on windows held in memory: drift, skew, no-data, performance,
attributions, and the per-feature settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ctloop.data import compute_statistics
from ctloop.errors import MonitorError
from ctloop.monitor import MonitorSettings, analyse_window
from ctloop.monitor._checks import attribution_shift, shares
from ctloop.monitor._html import render_monitor_report

FEATURES = ["distance", "hour", "carrier"]


def flights(n: int, seed: int, *, distance_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "distance": rng.gamma(4.0, 250.0, n) + distance_shift,
            "hour": rng.integers(5, 23, n).astype(float),
            "carrier": rng.choice(["AA", "B6", "DL", "UA"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "prediction": rng.uniform(size=n),
        }
    )


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return flights(5000, 0)


def test_drifted_feature_is_detected_and_named(training: pd.DataFrame) -> None:
    report = analyse_window(
        flights(500, 2, distance_shift=600.0),
        previous=flights(500, 1),
        features=FEATURES,
        reference=compute_statistics(training[FEATURES]),
    )
    assert report.verdict == "drift"
    assert report.drifted_features == ("distance",)
    assert report.skew_report()["distance"].drifted and report.drift_report()["distance"].drifted
    assert any("'distance'" in reason for reason in report.reasons)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_stable_windows_are_ok(training: pd.DataFrame, seed: int) -> None:
    report = analyse_window(
        flights(300, seed),
        previous=flights(300, seed + 100),
        features=FEATURES,
        reference=compute_statistics(training[FEATURES]),
    )
    assert report.verdict == "ok", report.reasons
    assert report.drifted_features == ()


def test_skew_against_training_statistics_alone(training: pd.DataFrame) -> None:
    window = flights(400, 6)
    window["carrier"] = "UA"  # one carrier only: a broken join upstream
    report = analyse_window(
        window, features=FEATURES, reference=compute_statistics(training[FEATURES])
    )
    assert report.drift is None
    assert report.verdict == "drift"
    assert report.drifted_features == ("carrier",)


def test_empty_and_small_windows_are_no_data(training: pd.DataFrame) -> None:
    reference = compute_statistics(training[FEATURES])
    empty = analyse_window(flights(0, 7), features=FEATURES, reference=reference)
    small = analyse_window(
        flights(50, 7, distance_shift=5000.0), features=FEATURES, reference=reference
    )
    assert (empty.verdict, small.verdict) == ("no-data", "no-data")
    assert small.skew is None and small.drifted_features == ()


def test_feature_overrides_silence_or_tighten_a_feature(training: pd.DataFrame) -> None:
    window = flights(500, 8, distance_shift=600.0)
    reference = compute_statistics(training[FEATURES])
    ignored = MonitorSettings.from_mapping({"features": {"distance": {"ignore": True}}})
    loose = MonitorSettings.from_mapping({"features": {"distance": {"threshold": 50.0}}})
    for settings in (ignored, loose):
        report = analyse_window(window, features=FEATURES, reference=reference, settings=settings)
        assert report.verdict == "ok"
    ks = MonitorSettings.from_mapping({"features": {"distance": {"test": "ks"}}})
    report = analyse_window(window, features=FEATURES, reference=reference, settings=ks)
    assert report.skew_report()["distance"].test == "ks"


def test_unknown_monitoring_key_is_refused() -> None:
    with pytest.raises(MonitorError, match="min_row"):
        MonitorSettings.from_mapping({"min_row": 5})


def labelled(n: int, seed: int, *, flip: float = 0.0) -> pd.DataFrame:
    """Predictions that score the label well; ``flip`` of the labels turned over."""
    rng = np.random.default_rng(seed)
    frame = flights(n, seed)
    frame["label"] = (rng.uniform(size=n) < frame["prediction"]).astype(int)
    flipped = rng.uniform(size=n) < flip
    frame.loc[flipped, "label"] = 1 - frame.loc[flipped, "label"]
    return frame


def test_performance_degradation_against_the_baseline() -> None:
    good = analyse_window(labelled(1000, 9), features=FEATURES, baseline={"auc": 0.78})
    bad = analyse_window(labelled(1000, 9, flip=0.4), features=FEATURES, baseline={"auc": 0.78})
    assert good.verdict == "ok", good.reasons
    assert bad.verdict == "degraded"
    assert bad.performance["drop"] > 0.05 and bad.reasons[0].startswith("auc is")


def test_attribution_drift_when_the_model_leans_on_another_feature() -> None:
    """A model of ``a`` and ``b``: at training time ``a`` decided the label; in the window
    ``a`` is stuck at one value and ``b`` decides it."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(10)
    train = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    y = (2.0 * train["a"] + 1.0 * train["b"] > 0).astype(int)
    model = LogisticRegression().fit(train, y)
    window = pd.DataFrame({"a": np.zeros(1000), "b": rng.normal(size=1000)})
    window["prediction"] = model.predict_proba(window)[:, 1]
    window["label"] = (window["b"] > 0).astype(int)
    reference = {"a": 0.8, "b": 0.2}
    report = analyse_window(
        window, features=["a", "b"], model=model, reference_attribution=reference, baseline={}
    )
    assert report.attribution is not None and report.attribution["drifted"]
    assert report.attribution["top_current"] == "b"
    assert report.attribution["changed"] == ["a", "b"]
    assert report.verdict == "drift"


def test_shares_and_shift_by_hand() -> None:
    assert shares({"x": 1.0, "y": 3.0}) == {"x": 0.25, "y": 0.75}
    shift = attribution_shift({"x": 0.5, "y": 0.5}, {"x": 0.4, "y": 0.6}, threshold=0.3)
    assert shift["distance"] == pytest.approx(0.1) and not shift["drifted"]


def test_html_report_renders_verdict_reasons_and_plots(training: pd.DataFrame) -> None:
    report = analyse_window(
        labelled(500, 11).assign(distance=lambda f: f.distance + 600.0),
        features=FEATURES,
        reference=compute_statistics(training[FEATURES]),
        baseline={"auc": 0.8},
        identity={"model": "flights<b>", "version": 2, "window": {"spec": "1d"}},
    )
    page = render_monitor_report(report)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "flights&lt;b&gt; v2" in page and "<b>" not in page.split("<body>")[1][:200]
    assert 'class="pill drift"' in page
    assert page.count("<svg") >= len(FEATURES)
    assert "Performance" in page and "auc" in page
