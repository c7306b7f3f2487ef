"""Each anomaly kind, found with the column, the expectation, what was seen and a severity."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ctloop.data import Anomalies, ColumnSchema, Schema, compute_statistics, validate
from ctloop.errors import AnomaliesFoundError, SchemaError

SCHEMA = Schema(
    (
        ColumnSchema("age", "int", min=0, max=120),
        ColumnSchema("city", "string", domain=("Oslo", "Rome"), max_out_of_domain_fraction=0.1),
        ColumnSchema("fare", "float", max_missing_fraction=0.25),
        ColumnSchema("label", "int", not_in_environments=("serving",)),
        ColumnSchema("note", "string", required=False),
    ),
    min_rows=2,
    environments=("training", "serving"),
)


def good() -> pd.DataFrame:
    return pd.DataFrame(
        {"age": [30, 40], "city": ["Oslo", "Rome"], "fare": [1.0, 2.0], "label": [0, 1]}
    )


def kinds(data: object, **options: object) -> list[tuple[str | None, str, str]]:
    return [(a.column, a.kind, a.severity) for a in validate(data, SCHEMA, **options)]  # type: ignore[arg-type]


def test_good_data_and_its_statistics_have_no_anomalies() -> None:
    assert kinds(good()) == []
    assert kinds(compute_statistics(good())) == []


def test_environments_drop_or_flag_the_label() -> None:
    assert kinds(good().drop(columns="label"), environment="serving") == []
    assert kinds(good(), environment="serving") == [("label", "unexpected_column", "warning")]
    assert kinds(good().drop(columns="label")) == [("label", "missing_column", "error")]
    with pytest.raises(SchemaError, match="environment 'staging' is not in"):
        validate(good(), SCHEMA, environment="staging")


def test_unexpected_column_and_type_mismatch() -> None:
    data = good().assign(extra=1, age=["30", "40"])
    assert kinds(data) == [
        ("age", "type_mismatch", "error"),
        ("extra", "unexpected_column", "warning"),
    ]
    assert kinds(data, severities={"unexpected_column": "error"})[-1][2] == "error"


def test_out_of_domain_above_the_tolerated_share() -> None:
    data = pd.concat([good()] * 10, ignore_index=True)
    data.loc[0, "city"] = "Paris"  # 5 %: tolerated
    assert kinds(data) == []
    data.loc[1, "city"] = "Paris"
    data.loc[2, "city"] = "Lima"  # 15 %
    (anomaly,) = validate(data, SCHEMA)
    assert (anomaly.column, anomaly.kind) == ("city", "out_of_domain")
    assert anomaly.seen == "0.15 outside, e.g. ['Paris', 'Lima']"


def test_range_missing_nan_and_inf() -> None:
    data = good()
    data["age"] = [-1, 130]
    data["fare"] = [np.nan, np.nan]
    (range_anomaly, missing) = validate(data, SCHEMA)
    assert range_anomaly.expected == "values in [0, 120]"
    assert range_anomaly.seen == "values in [-1.0, 130.0]"
    assert (missing.kind, missing.seen) == ("missing_values", "1 (2 rows)")
    assert [
        a.kind for a in validate(compute_statistics(good().assign(fare=[np.inf, 1.0])), SCHEMA)
    ] == ["inf"]


def test_nan_in_arrow_data_is_flagged() -> None:
    import pyarrow as pa

    table = pa.Table.from_pandas(good()).set_column(2, "fare", pa.array([float("nan"), 1.0]))
    assert kinds(table) == [("fare", "nan", "error")]


def test_too_few_rows_and_empty_data() -> None:
    assert kinds(good().iloc[:1]) == [(None, "too_few_rows", "error")]
    assert (None, "too_few_rows", "error") in kinds(good().iloc[:0])


def test_errors_raise_on_request_and_anomalies_round_trip() -> None:
    anomalies = validate(good().drop(columns="age"), SCHEMA)
    assert not anomalies.ok and len(anomalies.errors) == 1 and anomalies.warnings == ()
    with pytest.raises(AnomaliesFoundError, match="column 'age': missing_column") as info:
        anomalies.raise_for_errors()
    assert info.value.anomalies is anomalies
    assert Anomalies.from_dict(json.loads(json.dumps(anomalies.to_dict()))) == anomalies
