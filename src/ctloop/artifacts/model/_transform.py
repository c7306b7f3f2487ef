"""Custom pre- and post-processing stored with a model and applied wherever it predicts.

A :class:`Transform` turns the records a client sends into the frame the model was
trained on (``preprocess``) and the model's predictions into the answer the client reads
(``postprocess``). It is stored with the model by reference (its module and qualified
name; the module must be importable where the model is loaded, like a
:class:`~ctloop.artifacts.model.PythonModel`) and its state as files of the model
artifact, so ``ctloop serve`` (every protocol), ``ctloop predict`` and a bundle apply
the same code::

    class DelayFeatures(Transform):
        def __init__(self, late_after=0.5):
            self.late_after = late_after

        def preprocess(self, records):
            frame = pd.DataFrame.from_records(records)
            frame["dep_hour"] = frame.pop("dep_time") // 100
            return frame

        def postprocess(self, predictions, records):
            return {"probability": predictions, "late": predictions > self.late_after}

        def save(self, directory):
            (directory / "late_after.txt").write_text(str(self.late_after))

        @classmethod
        def load(cls, files):
            return cls(float(files["late_after.txt"].read_text()))

    model = Model.from_estimator(pipeline, X_train, transform=DelayFeatures(0.4))

What ``preprocess`` returns is checked against the model's signature, as a request
without a transform is. Errors are told apart by their cause: a
:class:`~ctloop.errors.TransformInputError` raised by the transform (or a ``KeyError``
for a field some record lacks) is the input's fault, a 4xx naming the field; anything
else the transform raises is a :class:`~ctloop.errors.TransformError`, the code's
fault, a 5xx.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import ModelError, SignatureError, TransformError, TransformInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ctloop.artifacts.model._signature import Signature

__all__ = [
    "TRANSFORM_DIR",
    "Transform",
    "apply_postprocess",
    "apply_preprocess",
    "as_records",
    "load_transform",
    "save_transform",
    "transform_signature_of",
]

TRANSFORM_DIR = "transform/"
"""Where a transform's state files live in the model's folder."""


class Transform:
    """Pre- and post-processing around a model; override what you need.

    The defaults pass records through as a DataFrame and answer ``{"prediction": …}``;
    ``save`` writes nothing and ``load`` calls the class without arguments. Subclass it
    at the top level of an importable module.

    ``signature`` (a :class:`~ctloop.artifacts.model.Signature`: the raw fields a
    client sends as ``inputs``, the answer's names as ``outputs``) may be declared by a
    subclass; servers describe it. ``Model.from_estimator(..., raw_example=rows)``
    records one from sample rows instead.

    >>> t = Transform()
    >>> t.preprocess([{"x": 1.5}]).to_dict("records")
    [{'x': 1.5}]
    """

    signature: Signature | None = None

    def preprocess(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        """The model's input frame for ``records`` (one dict per row, as sent).

        Raise :class:`~ctloop.errors.TransformInputError` (with ``field=``) for input
        you refuse; it reaches the client as a 4xx sentence."""
        import pandas as pd

        return pd.DataFrame.from_records(records)

    def postprocess(self, predictions: np.ndarray, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The answer for ``records``: output name → one value per row (a list or
        array). ``predictions`` are the model's, one per row."""
        return {"prediction": predictions}

    def save(self, directory: Path) -> None:
        """Write the transform's state as files into the empty folder ``directory``."""

    @classmethod
    def load(cls, files: Mapping[str, Path]) -> Transform:
        """The transform, from the files :meth:`save` wrote (name → local path)."""
        return cls()

    @property
    def reference(self) -> str:
        """``module:qualname`` of this transform's class, as stored with the model."""
        cls = type(self)
        return f"{cls.__module__}:{cls.__qualname__}"


def save_transform(transform: Transform, directory: Path) -> dict[str, Any]:
    """Write ``transform``'s state into ``directory``; return its entry of ``model.json``."""
    if not isinstance(transform, Transform):
        raise ModelError(
            f"transform must be a ctloop Transform, not {type(transform).__qualname__}; "
            "subclass ctloop.artifacts.model.Transform"
        )
    cls = type(transform)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        where = "a function" if "<locals>" in cls.__qualname__ else "a script"
        raise ModelError(
            f"the transform class {cls.__qualname__} is defined in {where}; define it at "
            "the top level of an importable module so the model can be loaded elsewhere"
        )
    directory.mkdir(parents=True, exist_ok=True)
    transform.save(directory)
    return {"class": transform.reference}


def load_transform(entry: Mapping[str, Any], files: Mapping[str, Path]) -> Transform:
    """The transform ``entry`` (from ``model.json``) names, loaded from its ``files``
    (name → local path, relative to its folder)."""
    reference = str(entry.get("class", ""))
    module_name, _, qualname = reference.partition(":")
    try:
        cls: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelError(
            f"the model's transform {reference} cannot be imported ({exc}); install the "
            "package that defines it or put its module on PYTHONPATH"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Transform)):
        raise ModelError(f"{reference} is not a ctloop Transform; refusing to load it")
    try:
        transform = cls.load(files)
    except Exception as exc:  # the user's load: name it, keep the traceback
        raise ModelError(f"the transform {reference} failed to load its files: {exc!r}") from exc
    if not isinstance(transform, Transform):
        raise ModelError(f"{reference}.load returned {type(transform).__qualname__}, not itself")
    return transform


def as_records(data: Any) -> list[dict[str, Any]]:
    """The rows of a request (records, a dict of columns, or a DataFrame) as records."""
    if isinstance(data, list):
        for i, row in enumerate(data):
            if not isinstance(row, dict):
                raise SignatureError(
                    f"row {i} is {type(row).__name__}, but this model's transform reads "
                    "named fields; send every row as an object of field values",
                    field="body",
                )
        return data
    if isinstance(data, dict):
        lengths = {len(v) if isinstance(v, list) else 1 for v in data.values()}
        rows = max(lengths, default=0)
        return [
            {k: (v[i] if isinstance(v, list) else v) for k, v in data.items()} for i in range(rows)
        ]
    if hasattr(data, "to_dict"):
        records: list[dict[str, Any]] = data.to_dict("records")
        return records
    raise SignatureError(
        f"the rows are {type(data).__name__}; send records, columns or a DataFrame",
        field="body",
    )


def apply_preprocess(
    transform: Transform, records: list[dict[str, Any]], signature: Signature
) -> pd.DataFrame:
    """``transform.preprocess(records)``, checked against ``signature`` (extra columns
    are dropped), with the input's faults told apart from the code's."""
    import pandas as pd

    try:
        frame = transform.preprocess(records)
    except TransformInputError:
        raise
    except KeyError as exc:
        refused = _key_refused(transform, records, exc.args[0] if exc.args else None)
        if refused is None:
            raise _code_failed(transform, "preprocess", records, exc) from exc
        raise refused from exc
    except Exception as exc:
        raise _code_failed(transform, "preprocess", records, exc) from exc
    if not isinstance(frame, pd.DataFrame):
        raise TransformError(
            f"the transform {transform.reference}'s preprocess returned "
            f"{type(frame).__qualname__}, not a pandas DataFrame; return one row per record"
        )
    if len(frame) != len(records):
        raise TransformError(
            f"the transform {transform.reference}'s preprocess returned {len(frame)} row(s) "
            f"for {len(records)} record(s); return one row per record"
        )
    try:
        return signature.to_frame(frame, allow_extra=True)
    except SignatureError as exc:
        raise SignatureError(
            f"after the model's transform {transform.reference}: {exc}", field=exc.field
        ) from exc


def apply_postprocess(
    transform: Transform, predictions: np.ndarray, records: list[dict[str, Any]]
) -> dict[str, np.ndarray]:
    """``transform.postprocess(predictions, records)`` as output name → array of one
    value per row; a :class:`TransformError` naming the output otherwise."""
    import numpy as np

    try:
        outputs = transform.postprocess(predictions, records)
    except TransformInputError:
        raise
    except Exception as exc:
        raise _code_failed(transform, "postprocess", records, exc) from exc
    if not isinstance(outputs, Mapping) or not outputs:
        raise TransformError(
            f"the transform {transform.reference}'s postprocess returned "
            f"{type(outputs).__qualname__}, not a non-empty dict of output name to values"
        )
    arrays: dict[str, np.ndarray] = {}
    for name, values in outputs.items():
        array = np.asarray(values)
        if not isinstance(name, str) or array.ndim == 0 or len(array) != len(records):
            count = "one value" if array.ndim == 0 else f"{len(array)} value(s)"
            raise TransformError(
                f"the transform {transform.reference}'s postprocess returned {count} for "
                f"output {name!r} and {len(records)} row(s); return a string name and one "
                "value per row for every output"
            )
        arrays[name] = array
    return arrays


def transform_signature_of(model: Any, raw_example: Any = None) -> Signature | None:
    """What ``model``'s transform reads and answers: the fields of ``raw_example`` (rows
    as a client sends them) and the outputs the transform answers for them, when given;
    else the transform's declared ``signature``; else ``None``. Bad sample rows raise
    :class:`~ctloop.errors.ModelError` naming the failure."""
    from ctloop.artifacts.model._signature import ColumnSpec, Signature, infer_signature

    transform = model.transform
    if raw_example is None:
        declared = getattr(transform, "signature", None)
        if declared is not None and not isinstance(declared, Signature):
            raise ModelError(
                f"{transform.reference}.signature is {type(declared).__qualname__}, not a "
                "ctloop Signature (or None)"
            )
        return declared
    import pandas as pd

    records = as_records(raw_example)
    if not records:
        raise ModelError("raw_example has no rows; pass a few rows as a client sends them")
    try:
        outputs = model.answer(model.predict_frame(model.prepare_request(records)), records)
    except (SignatureError, TransformError) as exc:
        raise ModelError(f"the transform could not answer raw_example: {exc}") from exc
    inputs = infer_signature(pd.DataFrame.from_records(records)).inputs
    answered = infer_signature(pd.DataFrame(outputs))
    return Signature(inputs, tuple(ColumnSpec(c.name, c.type) for c in answered.inputs))


def _key_refused(
    transform: Transform, records: list[dict[str, Any]], key: Any
) -> TransformInputError | None:
    """The input's fault behind a ``KeyError(key)`` of preprocess: a value of a field
    that the transform looked up and does not know, or a field a row lacks; ``None``
    when ``key`` is neither (a bug of the transform)."""
    for i, record in enumerate(records):
        for field, value in record.items():
            if isinstance(value, str | int) and not isinstance(value, bool) and value == key:
                return TransformInputError(
                    f"row {i}: the model's transform {transform.reference} knows no value "
                    f"{key!r} for field {field!r}; send one it knows",
                    field=str(field),
                )
    if not isinstance(key, str):
        return None
    row = next((i for i, record in enumerate(records) if key not in record), None)
    if row is None:
        return None
    return TransformInputError(
        f"row {row} has no field {key!r}, which the model's transform {transform.reference} "
        f"reads; send {key!r} with every row",
        field=key,
    )


def _code_failed(
    transform: Transform, stage: str, records: list[dict[str, Any]], exc: Exception
) -> TransformError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
    return TransformError(
        f"the transform {transform.reference} failed in {stage} on {len(records)} row(s): "
        f"{type(exc).__name__}: {first}"
    )
