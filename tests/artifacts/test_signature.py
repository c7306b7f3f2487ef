"""A signature's checks at the edges: numbers outside a column type's range, and rows
sent as lists of values in the signature's column order."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ctloop.artifacts.model import ColumnSpec, Signature
from ctloop.errors import SignatureError

SIGNATURE = Signature((ColumnSpec("x", "float"), ColumnSpec("n", "integer")))

TOO_BIG = [2**63, 2**64 - 1, 2**64, -(2**63) - 1, 1.8446744073709552e19, -1e19, 2.0**63, -(2.0**63)]
"""Integers (and integral floats, as orjson reads integers past 64 bits) outside int64."""


def _forms(values: list[object]) -> dict[str, object]:
    """``n`` holding ``values`` (after a valid row) as records, columns and a DataFrame:
    the plain-Python path and the DataFrame path."""
    rows = [{"x": 0.5, "n": 1}] + [{"x": 0.5, "n": v} for v in values]
    columns = {"x": [r["x"] for r in rows], "n": [r["n"] for r in rows]}
    frame = pd.DataFrame({"x": columns["x"], "n": pd.Series(columns["n"], dtype=object)})
    return {"records": rows, "columns": columns, "frame": frame}


@pytest.mark.parametrize("value", TOO_BIG, ids=str)
@pytest.mark.parametrize("form", ["records", "columns", "frame"])
def test_an_integer_outside_64_bits_names_its_column_and_row(value: object, form: str) -> None:
    for values in ([value], [value, None]):  # a missing value takes another path
        with pytest.raises(SignatureError) as raised:
            SIGNATURE.to_frame(_forms(values)[form])
        message = str(raised.value)
        assert raised.value.field == "n" and "row 1" in message, message
        assert "64-bit" in message and str(2**63 - 1) in message


@pytest.mark.parametrize("form", ["records", "columns", "frame"])
def test_the_ends_of_the_64_bit_range_are_integers(form: str) -> None:
    frame = SIGNATURE.to_frame(_forms([2**63 - 1, -(2**63)])[form])
    assert frame["n"].dtype == "int64" and frame["n"].tolist() == [1, 2**63 - 1, -(2**63)]


def test_a_csv_column_of_unsigned_integers_past_int64_is_refused() -> None:
    frame = pd.DataFrame({"x": [0.5, 0.5], "n": pd.array([1, 2**63], dtype="uint64")})
    with pytest.raises(SignatureError, match="row 1 has 9223372036854775808"):
        SIGNATURE.to_frame(frame)


@pytest.mark.parametrize("form", ["records", "columns"])
def test_a_number_too_large_for_a_float_names_its_column(form: str) -> None:
    data = _forms([3])[form]
    if isinstance(data, list):
        data[1]["x"] = 10**400
    else:
        data["x"][1] = 10**400  # type: ignore[index]
    with pytest.raises(SignatureError) as raised:
        SIGNATURE.to_frame(data)
    assert raised.value.field == "x" and "row 1" in str(raised.value)
    infinite = SIGNATURE.to_frame([{"x": math.inf, "n": 1}, {"x": -math.inf, "n": 2}])
    assert infinite["x"].tolist() == [math.inf, -math.inf]


def test_rows_of_values_follow_the_signature_column_order() -> None:
    signature = Signature(
        (
            ColumnSpec("x", "float"),
            ColumnSpec("c", "category", ("a", "b")),
            ColumnSpec("n", "integer"),
        )
    )
    frame = signature.to_frame([[0.5, "b", 3], [None, "a", 4]])
    assert frame.columns.tolist() == ["x", "c", "n"]
    assert frame["n"].tolist() == [3, 4] and frame["c"].cat.codes.tolist() == [1, 0]
    assert math.isnan(frame["x"][1])
    with pytest.raises(SignatureError, match="row 1 has 2 values") as raised:
        signature.to_frame([[0.5, "b", 3], [0.5, "b"]])
    assert "x, c, n" in str(raised.value)
    with pytest.raises(SignatureError, match="expects integer values but row 0"):
        signature.to_frame([[0.5, "b", "three"]])
    with pytest.raises(SignatureError, match="row 1 is dict"):
        signature.to_frame([[0.5, "b", 3], {"x": 0.5, "c": "b", "n": 3}])


def test_rows_of_values_reach_datetime_columns_too() -> None:
    signature = Signature((ColumnSpec("at", "datetime"), ColumnSpec("n", "integer")))
    frame = signature.to_frame([["2024-05-01T10:00:00", 1]])
    assert frame["at"].dt.hour.tolist() == [10] and frame["n"].tolist() == [1]


def test_a_frame_of_int64_columns_passes_unchanged() -> None:
    frame = SIGNATURE.to_frame(pd.DataFrame({"x": [0.5], "n": pd.array([2**63 - 1], "int64")}))
    assert frame["n"].tolist() == [2**63 - 1]


def test_text_in_a_frame_s_string_column_is_refused_not_read_as_missing() -> None:
    # pandas' own string dtype (the default for text since pandas 3) is checked like
    # object columns: '3 flights' is a SignatureError naming the row, not a silent NaN
    frame = pd.DataFrame({"x": [0.5, 1.5], "n": pd.Series(["3", "3 flights"], dtype="string")})
    with pytest.raises(SignatureError, match=r"column 'n' expects integer values but row 0"):
        SIGNATURE.to_frame(frame)
