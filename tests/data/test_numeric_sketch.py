"""Numeric histograms: exact merges, and the documented error bounds of their CDF."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hs

from ctloop.data import NumericStatistics
from ctloop.data._numeric_sketch import LogHistogram, NumericHistogram


def test_histogram_of_a_small_range_puts_one_value_per_bin() -> None:
    h = NumericHistogram.from_values(np.array([0.0, 1.0, 2.0, 3.0]), max_bins=4)
    assert (h.exponent, h.offset, h.counts.tolist()) == (0, 0, [1, 1, 1, 1])


def test_histogram_never_exceeds_its_bin_budget() -> None:
    values = np.random.default_rng(0).standard_cauchy(10_000)
    assert NumericHistogram.from_values(values, max_bins=64).counts.size <= 64


def test_constant_column_gets_a_single_bin() -> None:
    h = NumericHistogram.from_values(np.full(5, 1e300), max_bins=16)
    assert h.counts.tolist() == [5]


@settings(max_examples=200, deadline=None)
@given(
    hs.lists(hs.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=30),
    hs.lists(hs.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=30),
    hs.integers(2, 64),
)
def test_merged_histogram_equals_histogram_of_the_union(
    left: list[float], right: list[float], max_bins: int
) -> None:
    a, b = np.array(left), np.array(right)
    union = np.concatenate([a, b])
    merged = NumericHistogram.from_values(a, max_bins=max_bins).merge(
        NumericHistogram.from_values(b, max_bins=max_bins), float(union.min()), float(union.max())
    )
    assert merged == NumericHistogram.from_values(union, max_bins=max_bins)
    assert merged.counts.size <= max_bins and merged.total == union.size


@settings(max_examples=100, deadline=None)
@given(
    hs.lists(hs.floats(allow_nan=False, allow_infinity=False), max_size=30),
    hs.lists(hs.floats(allow_nan=False, allow_infinity=False), max_size=30),
    hs.integers(-1074, 1000),
    hs.integers(-1074, 1000),
)
def test_merged_log_histogram_equals_log_histogram_of_the_union(
    left: list[float], right: list[float], left_floor: int, right_floor: int
) -> None:
    a, b = np.array(left), np.array(right)
    union_floor = max(left_floor, right_floor)
    merged = LogHistogram.from_values(a, floor=left_floor).merge(
        LogHistogram.from_values(b, floor=right_floor), union_floor
    )
    assert merged == LogHistogram.from_values(np.concatenate([a, b]), floor=union_floor)
    assert LogHistogram.from_dict(merged.to_dict()) == merged


def test_quantiles_are_within_one_bin_of_numpy() -> None:
    values = np.random.default_rng(1).lognormal(size=50_000)
    stats = NumericStatistics.from_values(values)
    qs = np.linspace(0.01, 0.99, 25)
    error = np.abs(np.array(stats.quantiles(qs)) - np.quantile(values, qs))
    assert error.max() <= stats.histogram.width
    assert stats.histogram.width < 2 * (values.max() - values.min()) / 2047


def test_an_outlier_keeps_quantiles_within_2_2_percent() -> None:
    values = np.append(np.random.default_rng(2).lognormal(size=50_000), 1e6)
    stats = NumericStatistics.from_values(values)
    qs = np.linspace(0.01, 0.99, 25)
    expected = np.quantile(values, qs)
    assert np.all(np.abs(np.array(stats.quantiles(qs)) / expected - 1) <= 2 ** (1 / 32) - 1)


def test_cdf_is_exact_at_bin_edges() -> None:
    values = np.random.default_rng(3).normal(size=1000)
    stats = NumericStatistics.from_values(values, max_bins=128)
    h = stats.histogram
    edges = (np.arange(h.counts.size) + h.offset) * h.width
    assert np.allclose(stats.cdf.at(edges, left=True), [(values < e).mean() for e in edges])


def test_histograms_survive_a_round_trip_through_dicts() -> None:
    h = NumericHistogram.from_values(np.array([0.5, 7.0]), max_bins=16)
    assert NumericHistogram.from_dict(h.to_dict()) == h
