"""What a server says about a model with a transform: V2 metadata, the Triton-style
config and the OpenAPI document describe the raw fields a client sends and the outputs
it reads (recorded from sample rows, or declared by the transform class), and say "any
fields" rather than the inner model's columns when the transform declares none."""

from __future__ import annotations

from typing import Any

import pytest

from ctloop.artifacts.model import ColumnSpec, Model, Signature
from ctloop.errors import ModelError
from tests.serve import _models, _transforms
from tests.serve.conftest import ServingStore, live_server

RAW_FIELDS = [("x", "FP64"), ("count", "INT64"), ("colour", "BYTES"), ("flag", "BYTES")]


class Declared(_transforms.Renaming):
    """:class:`~tests.serve._transforms.Renaming` that declares what it reads and answers."""

    signature = Signature(
        (ColumnSpec("x", "float"), ColumnSpec("count", "integer"), ColumnSpec("colour", "string")),
        (ColumnSpec("probability", "float"), ColumnSpec("late", "boolean")),
    )


def model_with(transform: Any, raw_example: Any = None) -> Model:
    frame, _ = _models.training_frame()
    estimator = _models.classifier().estimator
    return Model.from_estimator(estimator, frame, transform=transform, raw_example=raw_example)


def documents(store: ServingStore, model: Model) -> tuple[dict[str, Any], ...]:
    store.register(model, alias="champion")
    with live_server(store.config(log_predictions=False)) as live:
        metadata = live.client.get("/v2/models/flights").json()
        config = live.client.get("/v2/models/flights/config").json()
        openapi = live.client.get("/openapi.json").json()
        answer = live.client.post("/predict", json={"records": _transforms.RAW})
    assert answer.status_code == 200, answer.text
    return metadata, config, openapi


def request_schema(openapi: dict[str, Any], path: str) -> dict[str, Any]:
    body = openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    schema: dict[str, Any] = body["schema"]
    return schema


def answer_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    ok = openapi["paths"]["/predict"]["post"]["responses"]["200"]["content"]
    items: dict[str, Any] = ok["application/json"]["schema"]["properties"]["predictions"]
    return items["items"]


def test_sample_rows_record_the_raw_fields_and_outputs(store: ServingStore) -> None:
    metadata, config, openapi = documents(
        store, model_with(_transforms.Renaming(0.4), _transforms.RAW)
    )
    assert [(t["name"], t["datatype"]) for t in metadata["inputs"]] == RAW_FIELDS
    assert [(t["name"], t["datatype"]) for t in metadata["outputs"]] == [
        ("probability", "FP64"),
        ("late", "BOOL"),
    ]
    assert [t["name"] for t in config["input"]] == [name for name, _ in RAW_FIELDS]
    assert [t["name"] for t in config["output"]] == ["probability", "late"]
    records = request_schema(openapi, "/predict")["properties"]["records"]["oneOf"][0]["items"]
    assert records["required"] == ["x", "count", "colour", "flag"]
    assert records["properties"]["count"]["type"] == "integer"
    assert "n" not in records["properties"] and "color" not in records["properties"]
    v2 = request_schema(openapi, "/v2/models/{model_name}/infer")["properties"]["inputs"]
    assert [t["properties"]["name"]["const"] for t in v2["prefixItems"]] == [
        "x",
        "count",
        "colour",
        "flag",
    ]
    assert answer_schema(openapi) == {
        "type": "object",
        "properties": {"probability": {"type": "number"}, "late": {"type": "boolean"}},
        "required": ["probability", "late"],
    }


def test_a_transform_class_may_declare_its_signature(store: ServingStore) -> None:
    metadata, _, openapi = documents(store, model_with(Declared(0.4)))
    assert [t["name"] for t in metadata["inputs"]] == ["x", "count", "colour"]
    assert [t["name"] for t in metadata["outputs"]] == ["probability", "late"]
    assert answer_schema(openapi)["required"] == ["probability", "late"]


def test_an_undeclared_transform_is_described_as_taking_any_fields(store: ServingStore) -> None:
    metadata, config, openapi = documents(store, model_with(_transforms.Renaming(0.4)))
    assert metadata["inputs"] == [] and metadata["outputs"] == []
    assert "any" in metadata["parameters"]["inputs"]
    assert config["input"] == []
    native = request_schema(openapi, "/predict")
    assert "Any fields" in native["description"]
    assert native["properties"]["records"]["items"] == {"type": "object"}
    assert "color" not in str(native)
    assert "Any fields" in request_schema(openapi, "/invocations")["description"]
    assert "Any fields" in request_schema(openapi, "/v2/models/{model_name}/infer")["description"]
    assert answer_schema(openapi) == {"type": "object", "description": "The transform's outputs."}


def test_a_model_without_a_transform_is_described_by_its_columns(champion: ServingStore) -> None:
    with live_server(champion.config(log_predictions=False)) as live:
        metadata = live.client.get("/v2/models/flights").json()
    assert [t["name"] for t in metadata["inputs"]] == ["x", "n", "color", "flag"]
    assert metadata["outputs"] == [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]


def test_sample_rows_the_transform_cannot_answer_are_refused() -> None:
    with pytest.raises(ModelError, match=r"could not answer raw_example.*'colour' must be"):
        model_with(_transforms.Renaming(), [{**_transforms.RAW[0], "colour": 3}])
    with pytest.raises(ModelError, match="pass transform= too"):
        Model.from_estimator(
            _models.classifier().estimator, _models.training_frame()[0], raw_example=_transforms.RAW
        )
