"""Statistics of small tables checked by hand, and merges checked against the union."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from ctloop.data import (
    DatasetStatistics,
    compute_statistics,
    detect_drift,
    infer_schema,
    merge_statistics,
    validate,
)
from ctloop.data._numeric_sketch import LOG_OCTAVES, PER_OCTAVE
from ctloop.errors import StatisticsError


@pytest.fixture
def table() -> pa.Table:
    return pa.table(
        {
            "x": pa.array([0.0, 1.0, 2.0, None, float("nan"), float("inf")]),
            "n": pa.array([1, 2, 3, 4, 5, 6]),
            "c": pa.array(["a", "b", "a", None, "a", "c"]),
            "flag": pa.array([True, False, True, True, None, None]),
            "t": pa.array([0, 60, None, 120, 180, 240], pa.timestamp("s")),
        }
    )


def test_numeric_column_by_hand(table: pa.Table) -> None:
    x = compute_statistics(table)["x"]
    assert (x.type, x.count, x.missing) == ("float", 6, 1)
    n = x.numeric
    assert n is not None
    assert (n.count, n.nan, n.inf, n.zeros, n.min, n.max, n.mean) == (3, 1, 1, 1, 0.0, 2.0, 1.0)
    assert math.isclose(n.std, math.sqrt(2 / 3))


def test_integer_column_by_hand(table: pa.Table) -> None:
    n = compute_statistics(table)["n"].numeric
    assert n is not None and (n.min, n.max, n.mean, n.m2) == (1.0, 6.0, 3.5, 17.5)
    assert n.quantiles([0.0, 1.0]) == [1.0, 6.0]


def test_categorical_and_bool_columns_by_hand(table: pa.Table) -> None:
    stats = compute_statistics(table)
    c, flag = stats["c"], stats["flag"]
    assert (c.type, c.missing, c.categories and c.categories.top(3)) == (
        "string",
        1,
        [("a", 3), ("b", 1), ("c", 1)],
    )
    assert flag.categories is not None and flag.categories.as_dict() == {"true": 3, "false": 1}
    assert (flag.type, flag.missing, flag.categories.distinct) == ("bool", 2, 2)


def test_timestamps_are_seconds_since_the_epoch(table: pa.Table) -> None:
    t = compute_statistics(table)["t"]
    assert t.type == "timestamp" and t.numeric is not None
    assert (t.missing, t.numeric.min, t.numeric.max) == (1, 0.0, 240.0)


def test_dates_and_dictionary_columns() -> None:
    data = pa.table(
        {
            "d": pa.array([0, 1], pa.date32()),
            "k": pa.array(["u", "v"]).dictionary_encode(),
        }
    )
    stats = compute_statistics(data)
    assert stats["d"].numeric is not None and stats["d"].numeric.max == 86400.0
    assert stats["k"].type == "string" and stats["k"].categories is not None


def test_pandas_nan_counts_as_missing() -> None:
    stats = compute_statistics(pd.DataFrame({"x": [1.0, np.nan]}))
    assert stats["x"].missing == 1 and stats["x"].numeric is not None
    assert stats["x"].numeric.nan == 0


def test_every_input_form_gives_the_same_statistics(table: pa.Table) -> None:
    expected = compute_statistics(table).to_dict()
    batches = table.to_batches(max_chunksize=2)
    forms = [
        batches,
        pa.RecordBatchReader.from_batches(table.schema, batches),
        iter(batches),
        [table.slice(0, 3), table.slice(3)],
    ]
    for form in forms:
        assert _rounded(compute_statistics(form).to_dict()) == _rounded(expected)
    assert compute_statistics(table, chunk_rows=1).num_rows == 6


def test_a_stored_pandas_index_is_not_a_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "c": list("ababababab")})
    filtered = frame[frame["x"] % 3 != 0]  # index 1, 2, 4, 5, 7, 8: stored as a column
    path = tmp_path / "filtered.parquet"
    filtered.to_parquet(path)
    table = pq.read_table(path)
    assert "__index_level_0__" in table.column_names
    expected = compute_statistics(filtered)
    assert expected.names == ("x", "c")
    forms = [table, table.to_batches()[0], table.to_reader(), pq.ParquetFile(path).iter_batches()]
    for form in forms:
        assert compute_statistics(form).to_dict() == expected.to_dict()
    named = pa.Table.from_pandas(frame.set_index("c"))  # a named index is an index too
    assert compute_statistics(named).names == ("x",)
    assert validate(table, infer_schema(expected)).ok
    assert [c.column for c in detect_drift(expected, table).columns] == ["x", "c"]


def test_statistics_survive_a_json_round_trip(table: pa.Table) -> None:
    stats = compute_statistics(table)
    again = DatasetStatistics.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert again == stats


def test_serialised_size_is_bounded_whatever_the_rows() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.standard_cauchy(300_000), rng.normal(0, 1e-9, 100_000)])
    numeric = compute_statistics(pa.table({"x": values}), max_bins=256)["x"].numeric
    assert numeric is not None
    stored = numeric.to_dict()
    log_bins = sum(len(stored["log_histogram"][side]["bins"]) for side in ("positive", "negative"))
    assert len(stored["histogram"]["counts"]) <= 256
    assert log_bins <= 2 * LOG_OCTAVES * PER_OCTAVE


def test_unreadable_input_and_unmergeable_statistics_are_refused() -> None:
    with pytest.raises(StatisticsError, match="cannot read data of type int"):
        compute_statistics(3)
    left = compute_statistics(pd.DataFrame({"x": [1]}))
    with pytest.raises(StatisticsError, match=r"only in the second \['y'\]"):
        merge_statistics(left, compute_statistics(pd.DataFrame({"x": [1], "y": [2]})))
    with pytest.raises(StatisticsError, match="column 'x' has type int in one batch and string"):
        merge_statistics(left, compute_statistics(pd.DataFrame({"x": ["a"]})))
    with pytest.raises(StatisticsError, match="format version 9"):
        DatasetStatistics.from_dict({"version": 9, "num_rows": 0, "columns": []})


numbers = hs.lists(
    hs.one_of(hs.floats(-1e6, 1e6, allow_nan=False), hs.none(), hs.just(float("nan"))),
    min_size=0,
    max_size=40,
)
labels = hs.lists(hs.one_of(hs.sampled_from(["a", "b", "c", "d"]), hs.none()), max_size=40)


@settings(max_examples=60, deadline=None)
@given(numbers, numbers)
def test_merge_of_numbers_equals_statistics_of_the_union(left: list, right: list) -> None:
    a, b = (
        pa.table({"x": pa.array(left, pa.float64())}),
        pa.table({"x": pa.array(right, pa.float64())}),
    )
    merged = merge_statistics(compute_statistics(a), compute_statistics(b))["x"]
    union = compute_statistics(pa.concat_tables([a, b]))["x"]
    assert (merged.count, merged.missing) == (union.count, union.missing)
    m, u = merged.numeric, union.numeric
    assert m is not None and u is not None
    assert (m.count, m.nan, m.inf, m.zeros, m.min, m.max) == (
        u.count,
        u.nan,
        u.inf,
        u.zeros,
        u.min,
        u.max,
    )
    assert math.isclose(m.mean, u.mean, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(m.m2, u.m2, rel_tol=1e-9, abs_tol=1e-3)
    assert m.histogram == u.histogram and m.log_histogram == u.log_histogram


@settings(max_examples=40, deadline=None)
@given(labels, labels)
def test_merge_of_categories_equals_statistics_of_the_union(left: list, right: list) -> None:
    a, b = (
        pa.table({"c": pa.array(left, pa.string())}),
        pa.table({"c": pa.array(right, pa.string())}),
    )
    merged = merge_statistics(compute_statistics(a), compute_statistics(b))["c"]
    union = compute_statistics(pa.concat_tables([a, b]))["c"]
    assert (merged.count, merged.missing) == (union.count, union.missing)
    assert merged.categories is not None and union.categories is not None
    assert merged.categories.as_dict() == union.categories.as_dict()


def _rounded(data: object) -> object:
    """Floats rounded, so sums taken in another order compare equal."""
    if isinstance(data, dict):
        return {k: _rounded(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_rounded(v) for v in data]
    return round(data, 9) if isinstance(data, float) else data
