"""The plain-value check that lets small requests be framed together with their batch."""

from __future__ import annotations

import pytest

from ctloop.artifacts.model import ColumnSpec, Signature
from ctloop.serve._fastpath import plain_records

SIG = Signature(
    (
        ColumnSpec("n", "integer"),
        ColumnSpec("x", "float"),
        ColumnSpec("flag", "boolean"),
        ColumnSpec("c", "category", ("a", "b")),
    )
)
ROW = {"n": 1, "x": 0.5, "flag": True, "c": "a"}


def test_plain_records_and_columns_pass() -> None:
    assert plain_records(SIG, [ROW]) == [ROW]
    columns = {k: [v, v] for k, v in ROW.items()}
    assert plain_records(SIG, columns) == [ROW, ROW]
    assert plain_records(SIG, [{**ROW, "x": 2, "c": None}]) is not None


@pytest.mark.parametrize(
    "data",
    [
        [{**ROW, "n": 1.0}],  # a float for an integer: prepare decides
        [{**ROW, "n": True}],  # a boolean is not an integer
        [{**ROW, "n": None}],  # a missing integer changes the column's type
        [{**ROW, "x": "0.5"}],
        [{**ROW, "flag": 1}],
        [{**ROW, "c": 3}],
        [{k: v for k, v in ROW.items() if k != "c"}],
        [{**ROW, "extra": 1}],
        [],
        {"n": [1], "x": [0.5], "flag": [True], "c": ["a", "b"]},  # ragged columns
        {"n": 1, "x": 0.5, "flag": True, "c": "a"},  # scalars, not columns
        "text",
    ],
)
def test_anything_unusual_takes_the_checked_path(data: object) -> None:
    assert plain_records(SIG, data) is None


def test_datetime_columns_always_take_the_checked_path() -> None:
    sig = Signature((ColumnSpec("t", "datetime"),))
    assert plain_records(sig, [{"t": "2024-01-01"}]) is None
