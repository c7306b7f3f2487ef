"""Skew and drift from statistics: agreement with SciPy, self-comparison, known shifts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from scipy.spatial import distance

from ctloop.data import (
    ColumnTest,
    DatasetStatistics,
    DriftConfig,
    DriftReport,
    compute_statistics,
    detect_drift,
)
from ctloop.data import _statistical_tests as st
from ctloop.errors import DataValidationError

rng = np.random.default_rng(20)


def numeric(values: np.ndarray) -> st.NumericStatistics:
    summary = compute_statistics(pd.DataFrame({"x": values}))["x"].numeric
    assert summary is not None
    return summary


def categories(values: np.ndarray) -> st.CategoryCounts:
    summary = compute_statistics(pd.DataFrame({"c": values}))["c"].categories
    assert summary is not None
    return summary


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3])
def test_ks_agrees_with_scipy_within_0_01(shift: float) -> None:
    a, b = rng.normal(size=20_000), rng.normal(shift, 1.2, size=15_000)
    ours = st.ks(numeric(a), numeric(b))
    theirs = scipy_stats.ks_2samp(a, b, method="asymp")
    assert abs(ours.statistic - theirs.statistic) < 0.01
    expected_p = scipy_stats.kstwo.sf(ours.statistic, round(20_000 * 15_000 / 35_000))
    assert ours.p_value == pytest.approx(expected_p)


def test_ks_on_small_samples_agrees_with_scipy() -> None:
    a, b = rng.exponential(size=300), rng.exponential(1.5, size=200)
    ours = st.ks(numeric(a), numeric(b))
    theirs = scipy_stats.ks_2samp(a, b, method="asymp")
    assert ours.statistic == pytest.approx(theirs.statistic, abs=0.01)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=0.3)


@pytest.mark.parametrize("shift", [0.0, 0.2, 1.0])
def test_normed_wasserstein_agrees_with_scipy_within_0_01(shift: float) -> None:
    a, b = rng.normal(size=20_000), rng.normal(shift, 0.8, size=10_000)
    ours = st.wasserstein(numeric(a), numeric(b)).statistic
    assert ours == pytest.approx(scipy_stats.wasserstein_distance(a, b) / a.std(), abs=0.01)


def test_categorical_tests_agree_with_scipy() -> None:
    a = rng.choice(list("abcd"), 5000, p=[0.4, 0.3, 0.2, 0.1])
    b = rng.choice(list("abcde"), 4000, p=[0.3, 0.3, 0.2, 0.1, 0.1])
    table = np.array([[np.sum(a == v) for v in "abcde"], [np.sum(b == v) for v in "abcde"]])
    reference = scipy_stats.chi2_contingency(table, correction=False)
    chi = st.chisquare(categories(a), categories(b))
    assert chi.statistic == pytest.approx(reference.statistic)
    assert chi.p_value == pytest.approx(reference.pvalue)
    js = st.jensenshannon(categories(a), categories(b)).statistic
    assert js == pytest.approx(distance.jensenshannon(table[0], table[1]))
    shares = table / table.sum(axis=1, keepdims=True)
    assert st.linf(categories(a), categories(b)).statistic == pytest.approx(
        np.abs(shares[0] - shares[1]).max()
    )
    p, q = np.maximum(shares[0], 1e-4), np.maximum(shares[1], 1e-4)
    assert st.categorical_psi(categories(a), categories(b)).statistic == pytest.approx(
        np.sum((q - p) * np.log(q / p))
    )


def test_numeric_psi_agrees_with_decile_bins_on_raw_values() -> None:
    a, b = rng.normal(size=20_000), rng.normal(0.5, 1, size=20_000)
    edges = np.quantile(a, np.linspace(0, 1, 11)[1:-1])
    p = np.histogram(a, [-np.inf, *edges, np.inf])[0] / a.size
    q = np.histogram(b, [-np.inf, *edges, np.inf])[0] / b.size
    expected = np.sum((q - p) * np.log(q / p))
    assert st.numeric_psi(numeric(a), numeric(b)).statistic == pytest.approx(expected, abs=0.01)


def mixed(rows: int, *, shift: float = 0.0, new_share: float = 0.0) -> pd.DataFrame:
    city = rng.choice(["Oslo", "Rome", "Lima"], rows)
    city = np.where(rng.random(rows) < new_share, "Paris", city)
    return pd.DataFrame(
        {
            "fare": rng.normal(10 + 3 * shift, 3, rows),
            "age": rng.integers(18, 80, rows),
            "city": city,
            "member": rng.random(rows) < 0.3,
        }
    )


@pytest.mark.parametrize("rows", [300, 20_000])
def test_a_sample_against_itself_has_no_drift(rows: int) -> None:
    data = mixed(rows)
    report = detect_drift(compute_statistics(data), data)
    assert not report.drifted and report.drifted_columns == ()
    assert all(c.statistic == pytest.approx(0.0, abs=1e-12) for c in report.columns)


@pytest.mark.parametrize(
    ("rows", "numeric_test", "categorical_test"),
    [(800, "ks", "chisquare"), (20_000, "wasserstein", "jensenshannon")],
)
def test_known_shifts_are_detected(rows: int, numeric_test: str, categorical_test: str) -> None:
    report = detect_drift(mixed(rows), mixed(rows, shift=1.0, new_share=0.3))
    assert report.drifted_columns == ("fare", "city")
    assert (report["fare"].test, report["city"].test) == (numeric_test, categorical_test)
    assert report.drifted_share == 0.5 and report.drifted


def test_fresh_sample_of_the_same_distribution_does_not_drift() -> None:
    report = detect_drift(mixed(20_000), mixed(20_000))
    assert report.drifted_columns == ()


def test_config_picks_tests_thresholds_columns_and_the_verdict() -> None:
    config = DriftConfig(
        tests={
            "fare": ColumnTest("psi", 0.2),
            "city": ColumnTest("linf", 0.5),
            "member": ColumnTest("psi"),
        },
        drift_share=0.9,
        exclude=("age",),
    )
    report = detect_drift(mixed(5000), mixed(5000, shift=1.0, new_share=0.3), config=config)
    assert [(c.column, c.test, c.threshold) for c in report.columns] == [
        ("fare", "psi", 0.2),
        ("city", "linf", 0.5),
        ("member", "psi", 0.1),
    ]
    assert report.drifted_columns == ("fare",) and not report.drifted
    assert DriftReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_columns_that_cannot_be_compared_are_skipped_with_a_reason() -> None:
    reference = pd.DataFrame({"x": [1.0, 2.0], "gone": [1, 2], "y": ["a", "b"]})
    current = pd.DataFrame({"x": [None, None], "new": [1, 2], "y": [1, 2]}, dtype=object).astype(
        {"new": int, "y": int}
    )
    report = detect_drift(reference, current)
    assert dict(report.skipped) == {
        "x": "type float in the reference and null in the current data",
        "y": "type string in the reference and int in the current data",
        "gone": "not in both data sets",
        "new": "not in both data sets",
    }
    assert report.columns == () and not report.drifted


def test_a_test_for_the_wrong_type_is_refused() -> None:
    with pytest.raises(DataValidationError, match="unknown drift test 't'"):
        ColumnTest("t")
    config = DriftConfig(tests={"city": ColumnTest("ks")})
    with pytest.raises(DataValidationError, match="'ks' is for numeric columns but column 'city'"):
        detect_drift(mixed(100), mixed(100), config=config)


def test_ks_and_wasserstein_stay_close_to_scipy_despite_an_outlier() -> None:
    a = np.append(rng.lognormal(size=20_000), 1e6)
    b = rng.lognormal(0.1, 1.0, size=20_000)
    ours = st.ks(numeric(a), numeric(b))
    assert ours.statistic == pytest.approx(scipy_stats.ks_2samp(a, b).statistic, abs=0.01)
    raw = scipy_stats.wasserstein_distance(a, b) / a.std()
    assert st.wasserstein(numeric(a), numeric(b)).statistic == pytest.approx(raw, rel=0.05)


def test_stored_training_statistics_are_enough_to_test_drift() -> None:
    training, serving = mixed(5000), mixed(5000, shift=1.0)
    stored = json.loads(json.dumps(compute_statistics(training).to_dict()))
    report = detect_drift(DatasetStatistics.from_dict(stored), serving)
    assert report == detect_drift(training, serving)
    assert report.drifted_columns == ("fare",)


def test_timestamps_drift_like_numbers() -> None:
    start = pd.Timestamp("2026-01-01")
    before = pd.DataFrame({"at": start + pd.to_timedelta(rng.integers(0, 86400, 5000), "s")})
    later = before.assign(at=before["at"] + pd.Timedelta(days=1))
    assert detect_drift(before, before).drifted_columns == ()
    assert detect_drift(before, later)["at"].drifted
