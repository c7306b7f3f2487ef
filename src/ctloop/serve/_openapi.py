"""The request bodies of the prediction endpoints, for the OpenAPI schema.

The endpoints read their bodies with orjson themselves (faster than model validation);
these schemas document them for clients and for schema-driven testing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.artifacts.model import Model
    from ctloop.artifacts.model._signature import ColumnSpec, Signature

__all__ = [
    "FEEDBACK_BODY",
    "MLFLOW_BODY",
    "NATIVE_BODY",
    "SAME_LENGTH",
    "V2_BODY",
    "describe_model",
    "describe_served_model",
]

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


REQUEST_ID_PATTERN = r"^[!-~]([ -~]{0,198}[!-~])?$"
"""What a client's request id may be: 1 to 200 printable ASCII characters, no space at
either end. It is echoed in the ``x-request-id`` header, which carries nothing else."""

_REQUEST_ID = {"type": "string", "pattern": REQUEST_ID_PATTERN}

NATIVE_BODY = _body(
    {
        "type": "object",
        "properties": {
            "records": _RECORDS,
            "columns": _COLUMNS,
            "request_id": _REQUEST_ID,
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
            "id": _REQUEST_ID,
            "inputs": {"type": "array", "items": _TENSOR},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    }
)

_LABEL = {
    "type": "object",
    "required": ["request_id", "label"],
    "properties": {"request_id": _REQUEST_ID, "label": _VALUE},
}

FEEDBACK_BODY = _body({"oneOf": [_LABEL, {"type": "array", "items": _LABEL}]})


# -- the served model's own document -------------------------------------------------------
#: the prediction endpoints' request bodies, rebuilt from the served model's signature
PREDICTION_PATHS = ("/predict", "/invocations", "/feedback")
_INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
_KEY = {"type": ["string", "integer", "null"], "minimum": -(2**63), "maximum": 2**64 - 1}
_ID = {**_KEY, "pattern": REQUEST_ID_PATTERN}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}},
}
_STATUS_TEXT = {
    "400": "Malformed request (the body names the field)",
    "404": "No such model, version or route",
    "413": "Body over the size limit",
    "415": "A content type or encoding the endpoint does not read",
    "422": "Input that does not match the model's signature (the body names the column)",
    "503": "The model is still loading",
}
_PREDICTION_PROPERTIES: dict[str, Any] = {
    "predictions": {"type": "array"},
    "model_version": {"type": "integer"},
    "request_id": {"type": "string"},
}
_PREDICTIONS = {
    "type": "object",
    "required": ["predictions", "model_version", "request_id"],
    "properties": _PREDICTION_PROPERTIES,
}
SAME_LENGTH = "x-ctloop-same-length"
"""Marks an object whose array values must all have the same length (one per row), a
constraint JSON Schema cannot state; schema-driven clients and tests read it."""


def describe_served_model(
    document: dict[str, Any], *, name: str, versions: list[int], model: Model
) -> dict[str, Any]:
    """:func:`describe_model` for ``model``: typed by its signature, or, with a
    transform, by the raw fields and outputs of its transform's signature (any fields,
    when the transform declares none)."""
    from ctloop.serve._feedback import label_type

    if model.transform is None:
        signature: Signature | None = model.signature
        answers = None
    else:
        declared = model.transform_signature
        signature = declared if declared is not None and declared.inputs else None
        answers = None if declared is None or not declared.outputs else declared.outputs
    return describe_model(
        document,
        name=name,
        versions=versions,
        signature=signature,
        label=label_type(model),
        missing=columns_taking_missing(model),
        transform=model.transform is not None,
        answers=answers,
    )


def describe_model(
    document: dict[str, Any],
    *,
    name: str,
    versions: list[int],
    signature: Signature | None,
    label: str | None,
    missing: frozenset[str] = frozenset(),
    transform: bool = False,
    answers: tuple[ColumnSpec, ...] | None = None,
) -> dict[str, Any]:
    """``document`` (FastAPI's OpenAPI document of the server) made exact for the served
    model: request bodies typed by its signature's columns (``null`` allowed in the
    ``missing`` ones, which the model predicts without; see :func:`columns_taking_missing`),
    the label by its label type
    (see :func:`ctloop.serve._feedback.label_type`), path parameters limited to its name
    and versions, and every status an operation answers, with its body. ``signature``
    ``None`` (a transform that declares no fields) describes bodies of any fields;
    ``transform`` answers objects of named outputs (``answers``, when known) per row.

    >>> from ctloop.artifacts.model import ColumnSpec, Signature
    >>> sig = Signature((ColumnSpec("x", "float"), ColumnSpec("n", "integer")))
    >>> doc = {"paths": {"/predict": {"post": {"responses": {}}}}}
    >>> body = describe_model(doc, name="m", versions=[1], signature=sig, label="integer")
    >>> schema = body["paths"]["/predict"]["post"]["requestBody"]["content"]
    >>> schema["application/json"]["schema"]["oneOf"]
    [{'required': ['records']}, {'required': ['columns']}]
    """
    if signature is None:
        v2 = _any_v2()
        bodies = {"/predict": _any_native(), "/invocations": _any_mlflow()}
    else:
        values = {c.name: _value(c.type, c.name in missing) for c in signature.inputs}
        v2 = _v2(values, signature)
        bodies = {"/predict": _native(values), "/invocations": _mlflow(values)}
    bodies |= {
        "/feedback": _feedback(label),
        "/v2/models/{model_name}/infer": v2,
        "/v2/models/{model_name}/versions/{version}/infer": v2,
    }
    predictions = _PREDICTIONS if not transform else _answers(answers)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _describe_operation(path, method, operation, name, versions, predictions)
            if path in bodies and method == "post":
                media = "application/json"
                content = {media: {"schema": bodies[path]}}
                operation["requestBody"] = {"required": True, "content": content}
    return document


def columns_taking_missing(model: Model) -> frozenset[str]:
    """The input columns ``model`` predicts without a value (``null``), found by asking
    it: one row of plain values, then that row with each column missing in turn. A model
    that cannot predict the plain row takes no missing value anywhere, as far as this
    can tell; nor does one with a transform (whose code decides).

    >>> sorted(columns_taking_missing(model))  # doctest: +SKIP
    ['color']
    """
    if model.transform is not None:
        return frozenset()
    inputs = model.signature.inputs
    row = {c.name: _example(c.type, c.categories) for c in inputs}

    def predicts(values: dict[str, Any]) -> bool:
        try:
            model.predict_frame(model.prepare([values]))
        except Exception:  # any failure means "not without this value"
            return False
        return True

    if not predicts(row):
        return frozenset()
    return frozenset(c.name for c in inputs if predicts({**row, c.name: None}))


def _example(kind: str, categories: tuple[str, ...] | None) -> Any:
    if categories:
        return categories[0]
    return {
        "integer": 0,
        "float": 0.0,
        "boolean": False,
        "datetime": "2000-01-01T00:00:00+00:00",
    }.get(kind, "")


def _describe_operation(
    path: str,
    method: str,
    operation: dict[str, Any],
    name: str,
    versions: list[int],
    predictions: dict[str, Any],
) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("name") == "model_name":
            parameter["schema"] = {"type": "string", "enum": [name]}
        elif parameter.get("name") == "version":
            parameter["schema"] = {"type": "string", "enum": [str(v) for v in versions]}
    responses = operation.setdefault("responses", {})
    statuses = _statuses(path, method)
    for status in statuses:
        responses[status] = {
            "description": _STATUS_TEXT[status],
            "content": {"application/json": {"schema": _ERROR}},
        }
    for status in [s for s in responses if s.startswith("4") and s not in statuses]:
        del responses[status]  # FastAPI's own 422 body is not what this server answers
    ok = responses.setdefault("200", {"description": "OK"})
    if path == "/metrics":
        ok["content"] = {"text/plain": {"schema": {"type": "string"}}}
    elif path in ("/predict", "/invocations"):
        ok["content"] = {"application/json": {"schema": predictions}}
    elif path.endswith("/infer"):
        ok["content"] = {
            "application/json": {"schema": {"type": "object"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        }
    if path in ("/ping", "/health", "/v2/health/ready") or path.endswith("/ready"):
        responses["503"] = {
            "description": _STATUS_TEXT["503"],
            "content": {"application/json": {"schema": {"type": "object"}}},
        }


def _statuses(path: str, method: str) -> list[str]:
    """The client-error statuses an operation answers."""
    found = []
    if "{model_name}" in path:
        found.append("404")
    if method == "post":
        found += ["400", "413", "422"]
        if path == "/invocations" or path.startswith("/v2/"):
            found.append("415")
    return sorted(set(found))


def _value(kind: str, missing: bool = False) -> dict[str, Any]:
    """A column value's schema: JSON types the signature converts without loss (and
    ``null`` when the model takes a missing value there)."""
    schema = _plain_value(kind)
    if missing:
        schema["type"] = [schema["type"], "null"]
    return schema


def _plain_value(kind: str) -> dict[str, Any]:
    if kind == "integer":
        return dict(_INT64)
    if kind == "float":
        return {"type": "number"}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "datetime":
        return {"type": "string", "format": "date-time"}
    return {"type": "string"}


def _rows(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One or more rows: all objects of the columns, or all lists of values in the
    signature's column order."""
    record = {
        "type": "object",
        "properties": values,
        "required": list(values),
        "additionalProperties": False,
    }
    ordered = {
        "type": "array",
        "prefixItems": list(values.values()),
        "items": False,
        "minItems": len(values),
    }
    return {
        "oneOf": [
            {"type": "array", "minItems": 1, "items": record},
            {"type": "array", "minItems": 1, "items": ordered},
        ]
    }


def _columns(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An object of column lists, every list as long as the others."""
    return {
        "type": "object",
        "description": "One list of values per column; every list has one value per row.",
        SAME_LENGTH: True,
        "properties": {
            column: {"type": "array", "minItems": 1, "items": value}
            for column, value in values.items()
        },
        "required": list(values),
        "additionalProperties": False,
    }


def _native(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "records": _rows(values),
            "columns": _columns(values),
            "request_id": _ID,
            "key": _KEY,
        },
        "additionalProperties": False,
        "oneOf": [{"required": ["records"]}, {"required": ["columns"]}],
    }


def _mlflow(values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {
                "type": "array",
                "prefixItems": [{"const": column} for column in values],
                "items": False,
                "minItems": len(values),
            },
            "data": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "array",
                    "prefixItems": list(values.values()),
                    "items": False,
                    "minItems": len(values),
                },
            },
        },
    }
    either = {"oneOf": [_rows(values), _columns(values)]}
    return {
        "type": "object",
        "properties": {
            "dataframe_split": split,
            "dataframe_records": _rows(values),
            "instances": either,
            "inputs": either,
            "request_id": _ID,
        },
        "oneOf": [{"required": [key]} for key in _MLFLOW_KEYS],
    }


_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_ANY_FIELDS = "Any fields: the model's transform reads the ones it needs and refuses the rest."
_ANY_RECORDS = {"type": "array", "minItems": 1, "items": {"type": "object"}}
_ANY_COLUMNS = {"type": "object", "additionalProperties": {"type": "array", "minItems": 1}}


def _any_native() -> dict[str, Any]:
    return {
        "type": "object",
        "description": _ANY_FIELDS,
        "properties": {
            "records": _ANY_RECORDS,
            "columns": _ANY_COLUMNS,
            "request_id": _ID,
            "key": _KEY,
        },
        "additionalProperties": False,
        "oneOf": [{"required": ["records"]}, {"required": ["columns"]}],
    }


def _any_mlflow() -> dict[str, Any]:
    split = {
        "type": "object",
        "required": ["columns", "data"],
        "properties": {
            "columns": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "data": {"type": "array", "minItems": 1, "items": {"type": "array"}},
        },
    }
    either = {"oneOf": [_ANY_RECORDS, _ANY_COLUMNS]}
    return {
        "type": "object",
        "description": _ANY_FIELDS,
        "properties": {
            "dataframe_split": split,
            "dataframe_records": _ANY_RECORDS,
            "instances": either,
            "inputs": either,
            "request_id": _ID,
        },
        "oneOf": [{"required": [key]} for key in _MLFLOW_KEYS],
    }


def _any_v2() -> dict[str, Any]:
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {"name": {"type": "string"}, "data": {"type": "array", "minItems": 1}},
    }
    return {
        "type": "object",
        "required": ["inputs"],
        "description": f"One tensor per field. {_ANY_FIELDS}",
        "properties": {
            "id": _ID,
            "inputs": {"type": "array", "minItems": 1, "items": tensor},
            "outputs": {"type": ["array", "null"], "items": {"type": "object"}},
            "parameters": {"type": ["object", "null"]},
        },
    }


def _answers(outputs: tuple[ColumnSpec, ...] | None) -> dict[str, Any]:
    """The answer of a model with a transform: one object of its outputs per row (any
    names, when the transform declares none)."""
    if outputs is None:
        row: dict[str, Any] = {"type": "object", "description": "The transform's outputs."}
    else:
        row = {
            "type": "object",
            "properties": {c.name: _plain_value(c.type) for c in outputs},
            "required": [c.name for c in outputs],
        }
    properties: dict[str, Any] = {**_PREDICTION_PROPERTIES}
    properties["predictions"] = {"type": "array", "items": row}
    return {**_PREDICTIONS, "properties": properties}


def _feedback(label: str | None) -> dict[str, Any]:
    kinds = {
        "integer": _INT64,
        "float": {"type": "number"},
        "boolean": {"type": "boolean"},
        "string": {"type": "string"},
    }
    value = kinds.get(label or "", {"type": ["number", "string", "boolean"]})
    item = {
        "type": "object",
        "required": ["request_id", "label"],
        "properties": {
            "request_id": {**_ID, "type": ["string", "integer"]},
            "label": value,
        },
    }
    return {"oneOf": [item, {"type": "array", "minItems": 1, "items": item}]}


def _v2(values: dict[str, dict[str, Any]], signature: Signature) -> dict[str, Any]:
    from ctloop.serve._protocols import V2_ACCEPTED

    nested = {"type": "array", "prefixItems": [], "items": False, "minItems": 1}
    tensors = []
    for column in signature.inputs:
        value = values[column.name]
        tensors.append(
            {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": {"const": column.name},
                    "shape": {
                        "type": "array",
                        "prefixItems": [{"type": "integer", "minimum": 1}, {"const": 1}],
                        "items": False,
                        "minItems": 1,
                    },
                    "datatype": {"enum": list(V2_ACCEPTED[column.type])},
                    "data": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"oneOf": [value, {**nested, "prefixItems": [value]}]},
                    },
                    "parameters": {
                        "type": ["object", "null"],
                        "not": {"required": ["binary_data_size"]},
                    },
                },
            }
        )
    flag = {"type": ["object", "null"], "properties": {"binary_data": {"type": "boolean"}}}
    return {
        "type": "object",
        "required": ["inputs"],
        "description": "One tensor per column, in any order; every tensor has shape [rows] "
        "or [rows, 1] and one value per row (a value, or a list of one value).",
        SAME_LENGTH: True,
        "properties": {
            "id": _ID,
            "inputs": {
                "type": "array",
                "prefixItems": tensors,
                "items": False,
                "minItems": len(tensors),
            },
            "outputs": {
                "type": ["array", "null"],
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"const": "predictions"}, "parameters": flag},
                },
            },
            "parameters": {
                "type": ["object", "null"],
                "properties": {"binary_data_output": {"type": "boolean"}},
            },
        },
    }
