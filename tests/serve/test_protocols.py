"""Parsing and encoding the three wire formats (no server needed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ctloop.artifacts.model.signature import ColumnSpec, Signature
from ctloop.errors import PredictionRequestError
from ctloop.serve import protocols as p


def test_native_records_columns_and_ids() -> None:
    parsed = p.parse_native(b'{"records": [{"x": 1}], "request_id": "r1", "key": "k"}')
    assert (parsed.data, parsed.request_id, parsed.key) == ([{"x": 1}], "r1", "k")
    assert p.parse_native(b'{"columns": {"x": [1, 2]}}').data == {"x": [1, 2]}
    assert p.parse_native(b'{"records": [], "request_id": 7}').request_id == "7"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b'"text"', "body"),
        (b'{"records": [], "columns": {}}', "records"),
        (b"{}", "records"),
        (b'{"records": {"x": 1}}', "records"),
        (b'{"columns": [1]}', "columns"),
        (b'{"records": [], "request_id": {"a": 1}}', "request_id"),
        (b'{"records": [], "other": 1}', "other"),
    ],
)
def test_native_mistakes_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PredictionRequestError) as raised:
        p.parse_native(body)
    assert raised.value.field == field and raised.value.status == 400


def test_mlflow_layouts_become_columns_or_records() -> None:
    split = b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, "u"], [2, "v"]]}}'
    assert p.parse_mlflow(split, "application/json").data == {"a": [1, 2], "b": ["u", "v"]}
    records = b'{"dataframe_records": [{"a": 1}]}'
    assert p.parse_mlflow(records, "application/json").data == [{"a": 1}]
    assert p.parse_mlflow(b'{"instances": [{"a": 1}]}', "application/json").data == [{"a": 1}]
    assert p.parse_mlflow(b'{"inputs": {"a": [1]}}', "application/json").data == {"a": [1]}
    frame = p.parse_mlflow(b"a,b\n1,u\n2,v\n", "text/csv; charset=utf-8").data
    assert isinstance(frame, pd.DataFrame) and frame.a.tolist() == [1, 2]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"instances": [], "inputs": {}}', "inputs"),
        (b'{"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}', "data"),
        (b'{"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}', "columns"),
        (b'{"dataframe_split": [1]}', "dataframe_split"),
        (b'{"instances": 3}', "instances"),
    ],
)
def test_mlflow_mistakes_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PredictionRequestError) as raised:
        p.parse_mlflow(body, "application/json")
    assert raised.value.field == field


def test_v2_tensors_become_columns() -> None:
    body = (
        b'{"id": "q", "inputs": [{"name": "x", "shape": [2, 1], "datatype": "FP64",'
        b' "data": [[1.5], [2.5]]}, {"name": "c", "shape": [2], "datatype": "BYTES",'
        b' "data": ["a", "b"]}]}'
    )
    parsed = p.parse_v2(body)
    assert parsed.data == {"x": [1.5, 2.5], "c": ["a", "b"]} and parsed.request_id == "q"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"inputs": []}', "inputs"),
        (b'{"inputs": [{"shape": [1], "data": [1]}]}', "inputs"),
        (b'{"inputs": [{"name": "x", "shape": [3], "datatype": "FP64", "data": [1]}]}', "x"),
        (b'{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}', "x"),
        (b'{"inputs": [{"name": "x", "shape": "1", "data": [1]}]}', "x"),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "data": [1]}, {"name": "x", "shape": [1], "data": [1]}]}',
            "x",
        ),
    ],
)
def test_v2_mistakes_name_the_tensor(body: bytes, field: str) -> None:
    with pytest.raises(PredictionRequestError) as raised:
        p.parse_v2(body)
    assert raised.value.field == field


def test_v2_response_and_metadata() -> None:
    answer = p.encode_v2("m", 3, "q", np.array([0.25, np.nan]))
    (output,) = answer["outputs"]
    assert (output["name"], output["shape"], output["datatype"]) == ("predictions", [2], "FP64")
    assert output["data"][0] == 0.25 and math.isnan(output["data"][1])
    assert (answer["model_name"], answer["model_version"], answer["id"]) == ("m", "3", "q")
    labels = p.encode_v2("m", 3, "q", np.array(["yes", "no"]))["outputs"][0]
    assert labels["datatype"] == "BYTES" and labels["data"] == ["yes", "no"]
    signature = Signature((ColumnSpec("a", "integer"), ColumnSpec("b", "category")))
    meta = p.v2_model_metadata("m", [3], signature)
    assert meta["inputs"] == [
        {"name": "a", "datatype": "INT64", "shape": [-1]},
        {"name": "b", "datatype": "BYTES", "shape": [-1]},
    ]


def test_feedback_one_or_many() -> None:
    assert p.parse_feedback(b'{"request_id": "r", "label": 1}') == (["r"], [1])
    many = b'[{"request_id": "a", "label": true}, {"request_id": "b", "label": "x"}]'
    assert p.parse_feedback(many) == (["a", "b"], [True, "x"])
    for bad, field in [
        (b"[]", "body"),
        (b'{"request_id": "r"}', "label"),
        (b'{"request_id": "r", "label": [1]}', "label"),
    ]:
        with pytest.raises(PredictionRequestError) as raised:
            p.parse_feedback(bad)
        assert raised.value.field == field
