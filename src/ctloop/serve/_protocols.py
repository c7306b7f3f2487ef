"""The wire formats of the prediction server, parsed into one request and encoded back.

Three protocols share one prediction core:

- native ``POST /predict``: ``{"records": [{…}, …]}`` or ``{"columns": {"a": […]}}``,
  optional ``"request_id"`` and ``"key"`` (the canary stickiness key);
- MLflow ``POST /invocations``: ``dataframe_split``, ``dataframe_records``, ``instances``,
  ``inputs`` or a ``text/csv`` body;
- the Open Inference Protocol (KServe V2) ``POST /v2/models/{name}/infer``: one tensor per
  column, answered with the tensor ``predictions``.

>>> parse_native(b'{"records": [{"x": 1.5}], "request_id": "r1"}').request_id
'r1'
>>> parse_mlflow(b'{"dataframe_split": {"columns": ["x"], "data": [[1.5]]}}', "application/json").data
{'x': [1.5]}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctloop.errors import PredictionRequestError
from ctloop.serve._json_body import MAX_DEPTH, decode_json
from ctloop.serve._openapi import REQUEST_ID_PATTERN

if TYPE_CHECKING:
    import numpy as np

    from ctloop.artifacts.model._signature import Signature

__all__ = [
    "MAX_DEPTH",
    "FeedbackRequest",
    "PredictionRequest",
    "V2Request",
    "decode_json",
    "encode_v2",
    "encode_v2_binary",
    "output_records",
    "parse_feedback",
    "parse_feedback_request",
    "parse_mlflow",
    "parse_native",
    "parse_v2",
    "predictions_list",
    "v2_model_metadata",
]

V2_DATATYPES = {
    "integer": "INT64",
    "float": "FP64",
    "boolean": "BOOL",
    "string": "BYTES",
    "category": "BYTES",
    "datetime": "BYTES",
}
"""The KServe V2 tensor type of each signature column type."""

V2_ACCEPTED = {
    "integer": ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8"),
    "float": ("FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8"),
    "boolean": ("BOOL",),
    "string": ("BYTES",),
    "category": ("BYTES",),
    "datetime": ("BYTES",),
}
"""The KServe V2 tensor types a client may send for each signature column type."""

_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


@dataclass(frozen=True)
class PredictionRequest:
    """One parsed request: ``data`` (records, a dict of columns, or a DataFrame for CSV),
    the client's ``request_id`` and stickiness ``key`` (either may be ``None``), the
    request's ``event_time`` as sent, and the ``event_times`` of its rows (seconds since
    the epoch, ``None`` for the wall clock) once read
    (:func:`~ctloop.serve._event_time.with_event_times`)."""

    data: Any
    request_id: str | None = None
    key: str | None = None
    event_time: Any = None
    event_times: tuple[float | None, ...] | None = None


def _object(body: bytes, example: str, *, non_finite: bool = False) -> dict[str, Any]:
    document = decode_json(body, non_finite=non_finite)
    if not isinstance(document, dict):
        raise PredictionRequestError(
            f"the request body must be a JSON object, not {type(document).__name__}; "
            f"send e.g. {example}",
            field="body",
        )
    return document


def _optional_text(document: Mapping[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer() and -(2.0**63) < value < 2.0**64:
        return str(int(value))  # 181.0 is the JSON number 181
    raise PredictionRequestError(
        f"{name!r} must be a string, not {type(value).__name__}", field=name
    )


_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def _request_id(document: Mapping[str, Any], name: str) -> str | None:
    """The client's request id under ``name``, checked so it can travel in a header."""
    value = _optional_text(document, name)
    if value is None or _REQUEST_ID.fullmatch(value):
        return value
    raise PredictionRequestError(
        f"{name!r} is {value[:60]!r}{'…' if len(value) > 60 else ''}; a request id is 1 to "
        "200 printable ASCII characters (letters, digits, punctuation; inner spaces), "
        "because it is echoed in the x-request-id header",
        field=name,
    )


def parse_native(body: bytes) -> PredictionRequest:
    """A native ``/predict`` body: ``records`` or ``columns``, ``request_id``, ``key``."""
    document = _object(body, '{"records": [{"x": 1}]}')
    unknown = set(document) - {"records", "columns", "request_id", "key", "event_time"}
    if unknown:
        name = sorted(unknown)[0]
        raise PredictionRequestError(
            f"the request has unknown field {name!r}; send 'records' or 'columns', with "
            "optional 'request_id', 'key' and 'event_time'",
            field=name,
        )
    if ("records" in document) == ("columns" in document):
        raise PredictionRequestError(
            "the request needs exactly one of 'records' (a list of objects) or 'columns' "
            "(an object of lists)",
            field="records",
        )
    data = document["records"] if "records" in document else document["columns"]
    _check_shape(data, "records" if "records" in document else "columns")
    return PredictionRequest(
        data,
        _request_id(document, "request_id"),
        _optional_text(document, "key"),
        event_time=document.get("event_time"),
    )


def _check_shape(data: Any, name: str) -> None:
    expected = list if name in ("records", "dataframe_records") else dict
    if not isinstance(data, expected):
        kind = "a list of objects" if expected is list else "an object of column lists"
        raise PredictionRequestError(
            f"{name!r} must be {kind}, not {type(data).__name__}", field=name
        )


def parse_mlflow(body: bytes, content_type: str) -> PredictionRequest:
    """An MLflow ``/invocations`` body (JSON in one of four layouts, or CSV). JSON may
    hold ``NaN`` (a missing value), ``Infinity`` and ``-Infinity``, as MLflow's client
    writes them; ``inputs`` and ``instances`` may be rows of values in the signature's
    column order."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "text/csv":
        return PredictionRequest(_csv_frame(body))
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise PredictionRequestError(
            f"/invocations reads application/json or text/csv, not {media_type!r}; send "
            "the body with one of those Content-Type headers",
            status=415,
            field="content-type",
        )
    document = _object(body, '{"dataframe_records": [{"x": 1}]}', non_finite=True)
    present = [k for k in _MLFLOW_KEYS if k in document]
    if len(present) != 1:
        raise PredictionRequestError(
            "the request needs exactly one of " + ", ".join(repr(k) for k in _MLFLOW_KEYS),
            field=present[1] if len(present) > 1 else "dataframe_split",
        )
    key = present[0]
    data = _mlflow_data(key, document[key])
    return PredictionRequest(
        data, _request_id(document, "request_id"), event_time=document.get("event_time")
    )


def _mlflow_data(key: str, value: Any) -> Any:
    if key == "dataframe_split":
        return _split_columns(value)
    if key == "dataframe_records":
        _check_shape(value, key)
        return value
    if isinstance(value, dict | list):  # instances / inputs: records or columns
        return value
    raise PredictionRequestError(
        f"{key!r} must be a list of records or an object of columns, not {type(value).__name__}",
        field=key,
    )


def _split_columns(value: Any) -> dict[str, list[Any]]:
    if not isinstance(value, dict):
        raise PredictionRequestError(
            "'dataframe_split' must be an object with 'columns' and 'data'",
            field="dataframe_split",
        )
    columns, rows = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise PredictionRequestError(
            "'dataframe_split.columns' must be a list of column names", field="columns"
        )
    if not isinstance(rows, list) or not all(
        isinstance(r, list) and len(r) == len(columns) for r in rows
    ):
        raise PredictionRequestError(
            f"'dataframe_split.data' must be a list of rows of {len(columns)} values each",
            field="data",
        )
    if len(set(columns)) != len(columns):
        raise PredictionRequestError("'dataframe_split.columns' repeats a name", field="columns")
    return {name: [row[i] for row in rows] for i, name in enumerate(columns)}


def _csv_frame(body: bytes) -> Any:
    import io

    import pandas as pd

    try:
        return pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise PredictionRequestError(
            f"the CSV body cannot be read ({exc}); send a header row and one row per record",
            field="body",
        ) from exc


@dataclass(frozen=True)
class V2Request(PredictionRequest):
    """A parsed KServe V2 inference request: its columns, and whether the client asked
    for the answer's tensors as binary data (the binary tensor extension)."""

    binary_outputs: bool = False
    datatypes: Mapping[str, str] | None = None

    def check_datatypes(self, signature: Signature) -> None:
        """Refuse a tensor whose datatype cannot hold its column's values (an INT64
        tensor for a string column, FP64 for an integer one): a 422 naming it."""
        kinds = {c.name: c.type for c in signature.inputs}
        for name, datatype in (self.datatypes or {}).items():
            accepted = V2_ACCEPTED.get(kinds.get(name, ""), ())
            if accepted and datatype not in accepted:
                raise PredictionRequestError(
                    f"tensor {name!r} has datatype {datatype!r}, but the model reads "
                    f"{name!r} as {kinds[name]} values; send it as {' or '.join(accepted)}",
                    status=422,
                    field=name,
                )


def parse_v2(body: bytes, *, header_length: str | None = None) -> V2Request:
    """A KServe V2 inference request: one tensor per input column, as JSON ``data`` or,
    when ``header_length`` (the ``Inference-Header-Content-Length`` header) is given,
    as binary data after the JSON document."""
    from ctloop.serve import _v2_binary as v2_binary

    text, binary = v2_binary.split_body(body, header_length)
    document = _object(text, '{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", …}]}')
    tensors = document.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise PredictionRequestError("'inputs' must be a non-empty list of tensors", field="inputs")
    columns: dict[str, list[Any]] = {}
    datatypes: dict[str, str] = {}
    offset = 0
    for tensor in tensors:
        name, values, offset = _v2_column(tensor, binary, offset)
        if name in columns:
            raise PredictionRequestError(f"tensor {name!r} is sent twice", field=name)
        columns[name] = values
        datatypes[name] = _datatype(tensor, name)
    if offset != len(binary):
        raise PredictionRequestError(
            f"the request has {len(binary) - offset} bytes of binary data that no input's "
            "'binary_data_size' accounts for; give every binary input its size",
            field=v2_binary.HEADER_LENGTH,
        )
    binary_outputs = _v2_binary_outputs(document)
    return V2Request(
        columns,
        _request_id(document, "id"),
        event_time=_parameters(document, "request").get("event_time"),
        binary_outputs=binary_outputs,
        datatypes=datatypes,
    )


def _datatype(tensor: Mapping[str, Any], name: str) -> str:
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str):
        raise PredictionRequestError(
            f"tensor {name!r} needs a 'datatype' such as FP64, INT64, BOOL or BYTES",
            field=name,
        )
    return datatype


def _v2_column(tensor: Any, binary: bytes, offset: int) -> tuple[str, list[Any], int]:
    """The name and values of one input tensor, and where the next binary tensor starts."""
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise PredictionRequestError(
            "each input tensor must be an object with 'name', 'shape', 'datatype', 'data'",
            field="inputs",
        )
    name = tensor["name"]
    shape = tensor.get("shape")
    if isinstance(shape, list):  # 1.0 is the JSON number 1
        shape = [int(d) if isinstance(d, float) and d.is_integer() else d for d in shape]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise PredictionRequestError(f"tensor {name!r} needs a 'shape' list of sizes", field=name)
    rows = shape[0] if shape else 0
    if rows < 1 or len(shape) > 2 or any(d != 1 for d in shape[1:]):
        raise PredictionRequestError(
            f"tensor {name!r} has shape {shape}; send one value per row with shape [rows] "
            "or [rows, 1]",
            field=name,
        )
    parameters = _parameters(tensor, name)
    size = parameters.get("binary_data_size")
    if "binary_data_size" not in parameters:
        values = _flatten(tensor.get("data"), name)
    else:
        values, offset = _v2_binary_column(tensor, name, size, binary, offset, rows)
    if len(values) != rows:
        raise PredictionRequestError(
            f"tensor {name!r} has shape {shape} and {len(values)} values; send one value "
            "per row with shape [rows] or [rows, 1]",
            field=name,
        )
    return name, values, offset


def _v2_binary_column(
    tensor: dict[str, Any], name: str, size: Any, binary: bytes, offset: int, rows: int
) -> tuple[list[Any], int]:
    from ctloop.serve import _v2_binary as v2_binary

    if type(size) is not int or size < 0:
        raise PredictionRequestError(
            f"tensor {name!r} has binary_data_size {size!r}; send its size in bytes",
            field=name,
        )
    if "data" in tensor:
        raise PredictionRequestError(
            f"tensor {name!r} has both 'data' and a binary_data_size; send one of them",
            field=name,
        )
    if offset + size > len(binary):
        raise PredictionRequestError(
            f"tensor {name!r} has binary_data_size {size}, but only {len(binary) - offset} "
            f"bytes follow the JSON document; send the tensors' bytes after it and the "
            f"JSON document's size in the {v2_binary.HEADER_LENGTH} header",
            field=name,
        )
    raw = binary[offset : offset + size]
    return v2_binary.decode_tensor(name, tensor.get("datatype"), raw, rows), offset + size


def _parameters(document: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    parameters = document.get("parameters")
    if parameters is None:  # null is no parameters
        return {}
    if not isinstance(parameters, dict):
        raise PredictionRequestError(
            f"the 'parameters' of {name!r} must be an object, not {type(parameters).__name__}",
            field=name,
        )
    return parameters


def _v2_binary_outputs(document: Mapping[str, Any]) -> bool:
    """Whether the answer's ``predictions`` go as binary data: the output's own
    ``binary_data`` parameter, else the request's ``binary_data_output``."""
    default = _flag(_parameters(document, "request"), "binary_data_output", "parameters")
    outputs = document.get("outputs")
    if outputs is None:
        return default
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise PredictionRequestError(
            "'outputs' must be a list of objects with a 'name'", field="outputs"
        )
    binary = default
    for output in outputs:
        if output["name"] != "predictions":
            raise PredictionRequestError(
                f"the request asks for output {output['name']!r}, but the model's only "
                "output is 'predictions'",
                field="outputs",
            )
        parameters = _parameters(output, output["name"])
        if "binary_data" in parameters:
            binary = _flag(parameters, "binary_data", "outputs")
    return binary


def _flag(parameters: Mapping[str, Any], name: str, field: str) -> bool:
    value = parameters.get(name, False)
    if not isinstance(value, bool):
        raise PredictionRequestError(
            f"parameter {name!r} must be true or false, not {value!r}", field=field
        )
    return value


def _flatten(data: Any, name: str) -> list[Any]:
    """A tensor's JSON ``data``: one value per row, each a value or a list of one value
    (shape [rows] or [rows, 1])."""
    if not isinstance(data, list):
        raise PredictionRequestError(f"tensor {name!r} needs a 'data' list", field=name)
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            if len(item) != 1 or isinstance(item[0], list | dict):
                raise PredictionRequestError(
                    f"tensor {name!r} has data {item!r} for one row; send one value per "
                    "row, as a value or a list of one value",
                    field=name,
                )
            flat.append(item[0])
        else:
            flat.append(item)
    return flat


def predictions_list(predictions: np.ndarray) -> list[Any]:
    """Predictions as plain Python values (orjson writes NaN as ``null``)."""
    values: list[Any] = predictions.tolist()
    return values


def output_records(outputs: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """A transform's outputs (name → one value per row) as one object per row, the form
    MLflow answers a model that returns a DataFrame with.

    >>> import numpy as np
    >>> output_records({"p": np.array([0.25, 0.75]), "late": np.array([False, True])})
    [{'p': 0.25, 'late': False}, {'p': 0.75, 'late': True}]
    """
    columns = [predictions_list(values) for values in outputs.values()]
    return [dict(zip(outputs, row, strict=True)) for row in zip(*columns, strict=True)]


def encode_v2(
    model: str,
    version: int,
    request_id: str,
    predictions: np.ndarray,
    outputs: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The V2 inference response: one output tensor ``predictions``, or one tensor per
    output of the model's transform when ``outputs`` are given."""
    tensors = []
    for name, values in (outputs or {"predictions": predictions}).items():
        kind = values.dtype.kind
        datatype = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL"}.get(kind, "BYTES")
        listed = predictions_list(values.astype(str) if datatype == "BYTES" else values)
        flat = _flatten(listed, name)
        shape = list(values.shape)
        tensors.append({"name": name, "shape": shape, "datatype": datatype, "data": flat})
    return _v2_response(model, version, request_id, tensors)


def encode_v2_binary(
    model: str,
    version: int,
    request_id: str,
    predictions: np.ndarray,
    outputs: Mapping[str, np.ndarray] | None = None,
) -> tuple[dict[str, Any], bytes]:
    """The V2 inference response with its tensors as binary data: the JSON document
    (whose outputs give their ``binary_data_size``) and the bytes to send after it."""
    from ctloop.serve import _v2_binary as v2_binary

    tensors, chunks = [], []
    for name, values in (outputs or {"predictions": predictions}).items():
        datatype, raw = v2_binary.encode_tensor(values)
        tensors.append(
            {
                "name": name,
                "shape": list(values.shape),
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        chunks.append(raw)
    return _v2_response(model, version, request_id, tensors), b"".join(chunks)


def _v2_response(
    model: str, version: int, request_id: str, outputs: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "model_name": model,
        "model_version": str(version),
        "id": request_id,
        "outputs": outputs,
    }


def v2_model_metadata(model: str, versions: Sequence[int], signature: Signature) -> dict[str, Any]:
    """The V2 model metadata document: inputs with their tensor types, the output."""
    return {
        "name": model,
        "versions": [str(v) for v in versions],
        "platform": "ctloop",
        "inputs": [
            {"name": c.name, "datatype": V2_DATATYPES[c.type], "shape": [-1]}
            for c in signature.inputs
        ],
        "outputs": [{"name": "predictions", "datatype": "FP64", "shape": [-1]}],
    }


@dataclass(frozen=True)
class FeedbackRequest:
    """A parsed ``/feedback`` body: each label's request id, label and the
    ``event_time`` its item sent (``None`` where it sent none)."""

    request_ids: list[str]
    labels: list[Any]
    event_times: list[Any]


def parse_feedback(body: bytes) -> tuple[list[str], list[Any]]:
    """A ``/feedback`` body: ``{"request_id": …, "label": …}`` or a list of them."""
    parsed = parse_feedback_request(body)
    return parsed.request_ids, parsed.labels


def parse_feedback_request(body: bytes) -> FeedbackRequest:
    """A ``/feedback`` body: ``{"request_id": …, "label": …, "event_time": …}`` (the
    event time optional) or a list of them."""
    document = decode_json(body)
    items = document if isinstance(document, list) else [document]
    if not items:
        raise PredictionRequestError(
            "the feedback list is empty; send at least one label", field="body"
        )
    parsed = FeedbackRequest([], [], [])
    for item in items:
        if not isinstance(item, dict) or "label" not in item:
            raise PredictionRequestError(
                'each feedback item must be an object {"request_id": "…", "label": …}',
                field="label",
            )
        request_id = _request_id(item, "request_id")
        if request_id is None:
            raise PredictionRequestError("a feedback item has no 'request_id'", field="request_id")
        label = item["label"]
        if isinstance(label, dict | list):
            raise PredictionRequestError(
                f"label {label!r} must be a number, string or boolean", field="label"
            )
        parsed.request_ids.append(request_id)
        parsed.labels.append(label)
        parsed.event_times.append(item.get("event_time"))
    return parsed
