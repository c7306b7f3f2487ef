"""Schemas: inferred from statistics, saved as YAML, edited, with environments."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from ctloop.data import ColumnSchema, Schema, compute_statistics, infer_schema, validate
from ctloop.errors import SchemaError


@pytest.fixture
def training() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [21, 35, 64, 40],
            "city": ["Oslo", "Rome", None, "Oslo"],
            "fare": [9.5, 12.0, 30.0, 7.25],
            "label": [0, 1, 1, 0],
        }
    )


def test_inferred_schema_describes_the_data(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training), environments={"serving": ["label"]})
    assert schema["age"] == ColumnSchema("age", "int", min=21.0, max=64.0)
    assert schema["city"].domain == ("Oslo", "Rome")
    assert schema["city"].max_missing_fraction == 0.25
    assert schema["label"].not_in_environments == ("serving",)
    assert schema.environments == ("serving",)


def test_schema_yaml_is_readable_and_round_trips(training: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(training), environments={"serving": ["label"]})
    text = schema.to_yaml()
    assert text.startswith("version: 1\n")
    assert (
        "- name: city\n  type: string\n  max_missing_fraction: 0.25\n  domain:\n  - Oslo\n" in text
    )
    assert Schema.from_yaml(text) == schema
    assert Schema.from_dict(schema.to_dict()) == schema


def test_a_hand_edited_schema_is_read(training: pd.DataFrame) -> None:
    text = """
version: 1
min_rows: 2
columns:
- {name: age, type: int, min: 18, max: 120}
- {name: city, type: string, domain: [Oslo, Rome, Paris], max_missing_fraction: 0.5}
"""
    schema = Schema.from_yaml(text)
    assert schema.min_rows == 2 and schema["city"].domain == ("Oslo", "Rome", "Paris")
    assert [a.kind for a in validate(training[["age", "city"]], schema)] == []


def test_with_column_replaces_or_adds() -> None:
    schema = Schema((ColumnSchema("x", "float"),))
    assert schema.with_column(ColumnSchema("x", "int")).columns == (ColumnSchema("x", "int"),)
    assert schema.with_column(ColumnSchema("y", "int")).names == ("x", "y")


def test_bad_documents_are_refused_with_the_fix() -> None:
    with pytest.raises(SchemaError, match="version 2 but this ctloop reads version 1"):
        Schema.from_yaml("version: 2\ncolumns: []\n")
    with pytest.raises(SchemaError, match=r"unknown keys \['colour'\]"):
        Schema.from_yaml("version: 1\ncolumns:\n- {name: x, type: int, colour: red}\n")
    with pytest.raises(SchemaError, match="not valid YAML"):
        Schema.from_yaml("version: [1\n")


columns = hs.fixed_dictionaries(
    {
        "x": hs.lists(hs.one_of(hs.floats(-1e9, 1e9), hs.none()), min_size=1, max_size=30),
        "c": hs.lists(hs.one_of(hs.text("abcxyz", max_size=3), hs.none()), min_size=1, max_size=30),
    }
)


@settings(max_examples=60, deadline=None)
@given(columns)
def test_a_schema_inferred_from_data_validates_that_data(data: dict) -> None:
    size = min(len(data["x"]), len(data["c"]))
    table = pa.table(
        {
            "x": pa.array(data["x"][:size], pa.float64()),
            "c": pa.array(data["c"][:size], pa.string()),
        }
    )
    anomalies = validate(table, infer_schema(compute_statistics(table)))
    assert list(anomalies) == []
