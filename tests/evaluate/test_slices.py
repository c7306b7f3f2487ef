"""Slices by value, by bins and by top-N values, with their row counts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctloop.errors import EvaluationError
from ctloop.evaluate import SliceSpec
from ctloop.evaluate._slices import slice_rows

DATA = pd.DataFrame(
    {
        "carrier": ["UA", "AA", "UA", "DL", None, "UA"],
        "distance": [100.0, 499.9, 500.0, 1500.0, np.nan, -5.0],
    }
)


def _sizes(spec: SliceSpec) -> dict[str, int]:
    return {value: len(rows) for value, rows in slice_rows(DATA, spec)}


def test_slices_by_value_put_missing_last() -> None:
    assert list(_sizes(SliceSpec("carrier")).items()) == [
        ("AA", 1),
        ("DL", 1),
        ("UA", 3),
        ("missing", 1),
    ]


def test_slices_by_bins_are_half_open_and_keep_the_rest() -> None:
    spec = SliceSpec("distance", bins=[0, 500, 1000, math.inf])
    assert _sizes(spec) == {
        "[0, 500)": 2,
        "[500, 1000)": 1,
        "[1000, inf)": 1,
        "out of bins": 1,
        "missing": 1,
    }


def test_top_values_keep_the_most_frequent_and_group_the_rest() -> None:
    assert _sizes(SliceSpec("carrier", top=1)) == {"UA": 3, "other": 2, "missing": 1}


def test_rows_are_positions_in_the_data() -> None:
    rows = dict(slice_rows(DATA, SliceSpec("carrier")))
    assert rows["UA"].tolist() == [0, 2, 5]


def test_bad_bins_are_refused_naming_the_column() -> None:
    with pytest.raises(EvaluationError, match=r"'distance'.*increasing"):
        SliceSpec("distance", bins=[10, 5])


def test_unknown_column_is_refused_listing_the_columns() -> None:
    with pytest.raises(EvaluationError, match=r"'origin'.*carrier, distance"):
        list(slice_rows(DATA, SliceSpec("origin")))


def test_text_column_cannot_be_binned() -> None:
    with pytest.raises(EvaluationError, match=r"'carrier'.*by value"):
        list(slice_rows(DATA, SliceSpec("carrier", bins=[0, 1])))


def test_spec_round_trips_with_infinite_edges() -> None:
    spec = SliceSpec("distance", bins=[0, math.inf], min_rows=5, label="dist")
    assert SliceSpec.from_dict(spec.to_dict()) == spec
    assert spec.name == "dist"


@given(
    st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=1, max_size=50),
    st.integers(1, 4),
)
def test_every_row_falls_in_exactly_one_slice(values: list[float | None], top: int) -> None:
    data = pd.DataFrame({"x": pd.array(values, dtype="Float64")})
    for spec in (SliceSpec("x", bins=[-10, 0, 10]), SliceSpec("x", top=top), SliceSpec("x")):
        rows = np.concatenate([r for _, r in slice_rows(data, spec)])
        assert sorted(rows.tolist()) == list(range(len(values)))
