"""Parsing and encoding the three wire formats (no server needed)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from ctloop.artifacts.model import ColumnSpec, Signature
from ctloop.errors import PredictionRequestError
from ctloop.serve import _protocols as p


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


def _nested(levels: int, leaf: bytes = b"1") -> bytes:
    """A JSON value of ``levels`` nested arrays around ``leaf``."""
    return b"[" * levels + leaf + b"]" * levels


@pytest.mark.parametrize(
    ("parse", "template"),
    [
        (p.parse_native, b'{"records": [{"x": %s}]}'),
        (lambda b: p.parse_mlflow(b, "application/json"), b'{"dataframe_records": [{"x": %s}]}'),
        (p.parse_v2, b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": %s}]}'),
        (p.parse_feedback, b'{"request_id": "r", "label": %s}'),
    ],
    ids=["native", "mlflow", "v2", "feedback"],
)
def test_json_nested_too_deeply_is_a_400_before_anything_walks_it(
    parse: Callable[[bytes], object], template: bytes
) -> None:
    for levels in (70, 1000, 1023):
        with pytest.raises(PredictionRequestError) as raised:
            parse(template % _nested(levels))
        assert raised.value.status == 400 and raised.value.field == "body"
        assert f"more than {p.MAX_DEPTH} levels" in str(raised.value)


def test_the_depth_limit_counts_structure_not_brackets_in_strings() -> None:
    # the deepest document allowed, with brackets in a string that do not pair up
    inner = _nested(p.MAX_DEPTH, b'"]]]{{"')
    assert p.decode_json(inner) is not None
    with pytest.raises(PredictionRequestError):
        p.decode_json(b"[" + inner + b"]")
    shallow = b'{"records": [{"c": "' + b"[" * 500 + b'"}]}'
    assert p.parse_native(shallow).data == [{"c": "[" * 500}]
    # a string that closes brackets cannot hide a deep document
    hidden = b'["' + b"]" * 200 + b'", ' + _nested(200) + b"]"
    with pytest.raises(PredictionRequestError, match="levels"):
        p.decode_json(hidden)


def test_mlflow_reads_nan_and_infinity_as_its_client_writes_them() -> None:
    body = (
        b'{"dataframe_split": {"index": [0, 1], "columns": ["a", "b", "c"],'
        b' "data": [[NaN, Infinity, "NaN"], [-Infinity, 1, null]]}}'
    )
    data = p.parse_mlflow(body, "application/json").data
    assert math.isnan(data["a"][0]) and data["a"][1] == -math.inf
    assert data["b"] == [math.inf, 1] and data["c"] == ["NaN", None]
    with pytest.raises(PredictionRequestError, match="levels"):
        p.parse_mlflow(b'{"inputs": {"a": [NaN, ' + _nested(1000) + b"]}}", "application/json")
    with pytest.raises(PredictionRequestError, match="not valid JSON"):
        p.parse_mlflow(b'{"inputs": {"a": [NaN, }', "application/json")
    # the native protocol stays strict JSON
    with pytest.raises(PredictionRequestError, match="not valid JSON"):
        p.parse_native(b'{"records": [{"a": NaN}]}')


def test_mlflow_refuses_a_content_type_it_does_not_read_with_415() -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        with pytest.raises(PredictionRequestError) as raised:
            p.parse_mlflow(b'{"inputs": {"a": [1]}}', content_type)
        assert raised.value.status == 415 and raised.value.field == "content-type"
        assert "application/json" in str(raised.value) and "text/csv" in str(raised.value)
    assert p.parse_mlflow(b'{"inputs": {"a": [1]}}', "application/json; charset=utf-8").data
