"""The request bodies of the prediction endpoints, for the OpenAPI schema.

The endpoints read their bodies with orjson themselves (faster than model validation);
these schemas document them for clients and for schema-driven testing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FEEDBACK_BODY", "MLFLOW_BODY", "NATIVE_BODY", "V2_BODY"]

_VALUE: dict[str, Any] = {"type": ["number", "string", "boolean", "null"]}
_RECORDS = {"type": "array", "items": {"type": "object", "additionalProperties": _VALUE}}
_COLUMNS = {"type": "object", "additionalProperties": {"type": "array", "items": _VALUE}}
_ROWS = {"type": "array", "items": {"type": "array", "items": _VALUE}}
"""Rows of values in the signature's column order (MLflow's tensor input)."""
_ERRORS = {
    "400": {"description": "Malformed request (the body names the field)"},
    "413": {"description": "Body over the size limit"},
    "422": {"description": "Input that does not match the model's signature"},
}


def _body(
    schema: dict[str, Any],
    media: tuple[str, ...] = ("application/json",),
    errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {m: {"schema": schema} for m in media}},
        "responses": {**_ERRORS, **(errors or {})},
    }


NATIVE_BODY = _body(
    {
        "type": "object",
        "properties": {
            "records": _RECORDS,
            "columns": _COLUMNS,
            "request_id": {"type": "string"},
            "key": {"type": "string"},
        },
    }
)

MLFLOW_BODY = _body(
    {
        "type": "object",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array", "items": _VALUE}},
                },
            },
            "dataframe_records": _RECORDS,
            "instances": {"oneOf": [_RECORDS, _COLUMNS, _ROWS]},
            "inputs": {"oneOf": [_RECORDS, _COLUMNS, _ROWS]},
        },
    },
    errors={"415": {"description": "A body that is neither application/json nor text/csv"}},
)

_TENSOR = {
    "type": "object",
    "required": ["name", "shape", "datatype", "data"],
    "properties": {
        "name": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer"}},
        "datatype": {"type": "string", "enum": ["BOOL", "INT64", "FP64", "FP32", "BYTES"]},
        "data": {"type": "array", "items": _VALUE},
    },
}

V2_BODY = _body(
    {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "inputs": {"type": "array", "items": _TENSOR},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    }
)

_LABEL = {
    "type": "object",
    "required": ["request_id", "label"],
    "properties": {"request_id": {"type": "string"}, "label": _VALUE},
}

FEEDBACK_BODY = _body({"oneOf": [_LABEL, {"type": "array", "items": _LABEL}]})
