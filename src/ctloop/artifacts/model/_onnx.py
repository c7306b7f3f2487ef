"""A model compiled to ONNX and run with ONNX Runtime, accepted only when it agrees.

:func:`compile_onnx` converts a :class:`~ctloop.artifacts.model.Model` (scikit-learn
pipelines with ``skl2onnx``, XGBoost and LightGBM with ``onnxmltools``), scores a
validation frame with both runtimes, and attaches the compiled model only when the
largest absolute difference of the outputs (probabilities of a classifier, values of a
regressor) is at most ``tolerance``. The original estimator always stays in the model as
the fallback: a runtime error in ONNX Runtime falls back to it, and is counted.

>>> result = compile_onnx(model, validation_frame, tolerance=1e-4)  # doctest: +SKIP
>>> result.accepted, result.max_abs_diff, model.runtime  # doctest: +SKIP
(True, 1.7e-07, 'onnx')
>>> model.save("flights-model")  # writes onnx/model.onnx next to estimator/  # doctest: +SKIP

Numeric inputs are fed as float32 (tree ensembles in ONNX compare in float32, and feeding
float64 would compare against float32-rounded thresholds in float64, which is how
predictions drift); text and category inputs as strings, a missing one as ``""``
(unknown to the encoder, as a missing value is to scikit-learn's ``OrdinalEncoder``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctloop.errors import ModelError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ctloop.artifacts.model._model import Model
    from ctloop.artifacts.model._signature import Signature

__all__ = ["ONNX_FILE", "CompileResult", "OnnxModel", "compile_onnx"]

ONNX_FILE = "onnx/model.onnx"
"""Where a compiled model's ONNX bytes live inside the model's folder."""
_TEXT_TYPES = ("string", "category")
_NUMERIC_TYPES = ("integer", "float", "boolean")
_TARGET_OPSET = 17


@dataclass(frozen=True)
class CompileResult:
    """What :func:`compile_onnx` found: whether the compiled model was accepted, the
    largest absolute difference from the original on the validation rows (``None`` when
    it could not be measured), and why in a sentence."""

    accepted: bool
    max_abs_diff: float | None
    reason: str
    tolerance: float = 1e-4
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "accepted": self.accepted,
            "max_abs_diff": self.max_abs_diff,
            "reason": self.reason,
            "tolerance": self.tolerance,
            "rows": self.rows,
        }


class OnnxModel:
    """ONNX bytes and how to feed them: one input per column (``"columns"``) or one
    float32 matrix of all columns (``"matrix"``). The ONNX Runtime session is built once,
    on first use, with one intra-op thread (callers parallelise across requests)."""

    def __init__(
        self, data: bytes, *, signature: Signature, feed: str, task: str, output: str
    ) -> None:
        if feed not in ("columns", "matrix"):
            raise ModelError(f"ONNX feed {feed!r} is not 'columns' or 'matrix'")
        self.data = data
        self.signature = signature
        self.feed = feed
        self.task = task
        self.output = output
        self._session: Any = None
        self._lock = threading.Lock()
        self._known = {  # a value outside a category column's training values feeds as ""
            spec.name: frozenset(spec.categories)
            for spec in signature.inputs
            if spec.type == "category" and spec.categories is not None
        }
        # the records feed's plan: the numeric columns, and each text column's known values
        self._numeric = [spec.name for spec in signature.inputs if spec.type not in _TEXT_TYPES]
        self._texts = [
            (spec.name, self._known.get(spec.name))
            for spec in signature.inputs
            if spec.type in _TEXT_TYPES
        ]

    def describe(self) -> dict[str, Any]:
        """The compiled model's entry in ``model.json`` (the bytes live in ``onnx/``)."""
        import onnxruntime

        return {
            "file": ONNX_FILE,
            "feed": self.feed,
            "output": self.output,
            "onnxruntime_version": onnxruntime.__version__,
        }

    def session(self) -> Any:
        """The ONNX Runtime session (built on first call)."""
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = _new_session(self.data)
        return self._session

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's output for a prepared frame, like ``Model.predict_frame``."""
        return self._output(self.session().run([self.output], self.inputs(frame)))

    def predict_records(self, records: list[dict[str, Any]]) -> np.ndarray:
        """The model's output for plain records — every value already of its column's
        type, as :func:`ctloop.serve._fastpath.plain_records` checks — fed to the session
        without building a DataFrame (a one-row frame costs ten times the prediction).
        Same feed as :meth:`predict` of the prepared frame: missing numbers are NaN,
        missing or unseen categories ``""``."""
        return self._output(self.session().run([self.output], self.records_feed(records)))

    def records_feed(self, records: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """The session's feed for plain records (see :meth:`predict_records`): the
        numeric columns as one float32 array, each column's input a view of its part
        (one conversion for all of them), the text columns as object arrays."""
        import numpy as np

        nan = float("nan")
        if self.feed == "matrix":
            names = self.signature.input_names
            rows = [[nan if r[n] is None else r[n] for n in names] for r in records]
            return {"X": np.array(rows, dtype=np.float32).reshape(len(records), len(names))}
        feed: dict[str, np.ndarray] = {}
        numeric = self._numeric
        if numeric:  # one flat list, column after column: nested lists convert slowly
            values = [nan if (v := r[n]) is None else v for n in numeric for r in records]
            matrix = np.array(values, dtype=np.float32).reshape(len(numeric), len(records), 1)
            feed.update(zip(numeric, matrix, strict=True))
        for name, known in self._texts:
            column = np.empty((len(records), 1), dtype=object)
            column[:, 0] = [
                "" if (v := r[name]) is None or (known is not None and v not in known) else v
                for r in records
            ]
            feed[name] = column
        return feed

    def _output(self, outputs: list[Any]) -> np.ndarray:
        import numpy as np

        values = np.asarray(outputs[0])
        if self.task == "classification" and values.ndim == 2 and values.shape[1] == 2:
            return values[:, 1]
        return values.ravel() if values.ndim == 2 and values.shape[1] == 1 else values

    def inputs(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """The session's feed for ``frame``."""
        import numpy as np

        if self.feed == "matrix":
            names = self.signature.input_names
            return {"X": frame[names].to_numpy(dtype=np.float32, na_value=np.nan)}
        return {spec.name: _column(frame[spec.name], spec.type) for spec in self.signature.inputs}


def compile_onnx(model: Model, validation: Any, tolerance: float = 1e-4) -> CompileResult:
    """Convert ``model`` to ONNX and attach it when its output on ``validation`` (a frame
    or records with the model's input columns; extra columns are ignored) is within
    ``tolerance`` of the original's (largest absolute difference).

    A model that cannot be converted, or that disagrees, is left native: ``accepted`` is
    False and ``reason`` says why. Accepted: ``model.runtime == "onnx"`` and
    :meth:`Model.save` stores the ONNX bytes in ``onnx/model.onnx``.

    >>> compile_onnx(model, X_valid).max_abs_diff  # doctest: +SKIP
    1.7e-07
    """
    frame = model.prepare(validation, allow_extra=True)
    if len(frame) == 0:
        return CompileResult(False, None, "the validation data has no rows", tolerance)
    try:
        compiled = convert(model)
    except Exception as exc:
        reason = f"the {model.flavor} model could not be converted to ONNX: {exc}"
        return CompileResult(False, None, _first_line(reason), tolerance, len(frame))
    return _accept_if_close(model, compiled, frame, tolerance)


def _accept_if_close(
    model: Model, compiled: OnnxModel, frame: pd.DataFrame, tolerance: float
) -> CompileResult:
    import numpy as np

    expected = np.asarray(model.predict_native(frame), dtype=np.float64)
    try:
        actual = np.asarray(compiled.predict(frame), dtype=np.float64)
    except Exception as exc:
        reason = f"ONNX Runtime could not run the converted model: {exc}"
        return CompileResult(False, None, _first_line(reason), tolerance, len(frame))
    if actual.shape != expected.shape:
        reason = f"the ONNX output has shape {actual.shape}, the original {expected.shape}"
        return CompileResult(False, None, reason, tolerance, len(frame))
    diff = _max_abs_diff(expected, actual)
    if diff > tolerance:
        reason = (
            f"the ONNX predictions differ from the original by up to {diff:.3g} on "
            f"{len(frame)} validation rows, more than the tolerance {tolerance:g}"
        )
        return CompileResult(False, diff, reason, tolerance, len(frame))
    model.attach_compiled(compiled, {"max_abs_diff": diff, "tolerance": tolerance})
    reason = f"max abs diff {diff:.3g} on {len(frame)} validation rows <= {tolerance:g}"
    return CompileResult(True, diff, reason, tolerance, len(frame))


def convert(model: Model) -> OnnxModel:
    """The ONNX form of ``model`` (not yet checked against the original); raises
    :class:`~ctloop.errors.ModelError` or the converter's own error when it has none."""
    if model.task not in ("classification", "regression"):
        raise ModelError(
            f"a model of task {model.task!r} has no ONNX form; only "
            "classifiers and regressors convert"
        )
    if model.flavor == "sklearn":
        data, feed = _convert_sklearn(model)
    elif model.flavor in ("xgboost", "lightgbm"):
        data, feed = _convert_boosting(model), "matrix"
    else:
        raise ModelError(f"models of flavor {model.flavor!r} have no ONNX converter")
    output = _output_name(data, model.task)
    return OnnxModel(data, signature=model.signature, feed=feed, task=model.task, output=output)


def load_compiled(
    files: Mapping[str, Any], entry: Mapping[str, Any], signature: Signature, task: str
) -> OnnxModel | None:
    """The compiled model described by ``entry`` (from ``model.json``), if its file is
    among ``files``; the session is built on first use."""
    path = files.get(str(entry.get("file", ONNX_FILE)))
    if path is None:
        return None
    return OnnxModel(
        path.read_bytes(),
        signature=signature,
        feed=str(entry["feed"]),
        task=task,
        output=str(entry["output"]),
    )


def _convert_sklearn(model: Model) -> tuple[bytes, str]:
    from skl2onnx import convert_sklearn

    estimator = model.estimator
    per_column = _reads_columns(estimator)
    types = _column_types(model.signature) if per_column else _matrix_type(model.signature)
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(final): {"zipmap": False}} if model.task == "classification" else None
    with _boolean_attributes_as_ints():
        onx = convert_sklearn(
            estimator, initial_types=types, target_opset=_TARGET_OPSET, options=options
        )
    return onx.SerializeToString(), "columns" if per_column else "matrix"


def _convert_boosting(model: Model) -> bytes:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [("X", FloatTensorType([None, len(model.signature.inputs)]))]
    _require_numeric(model.signature)
    if model.flavor == "xgboost":
        onx = onnxmltools.convert_xgboost(model.estimator, initial_types=types)
    else:
        onx = onnxmltools.convert_lightgbm(model.estimator, initial_types=types, zipmap=False)
    return bytes(onx.SerializeToString())


def _reads_columns(estimator: Any) -> bool:
    """Pipelines and column transformers select columns by name: one input per column."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        return isinstance(estimator.steps[0][1], ColumnTransformer | Pipeline)
    return isinstance(estimator, ColumnTransformer)


def _column_types(signature: Signature) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types: list[tuple[str, Any]] = []
    for spec in signature.inputs:
        if spec.type in _TEXT_TYPES:
            types.append((spec.name, StringTensorType([None, 1])))
        elif spec.type in _NUMERIC_TYPES:
            types.append((spec.name, FloatTensorType([None, 1])))
        else:
            raise ModelError(f"column {spec.name!r} of type {spec.type} has no ONNX input type")
    return types


def _matrix_type(signature: Signature) -> list[tuple[str, Any]]:
    from skl2onnx.common.data_types import FloatTensorType

    _require_numeric(signature)
    return [("X", FloatTensorType([None, len(signature.inputs)]))]


def _require_numeric(signature: Signature) -> None:
    for spec in signature.inputs:
        if spec.type not in _NUMERIC_TYPES:
            raise ModelError(
                f"column {spec.name!r} is {spec.type}, but an estimator without a column "
                "transformer is fed one numeric matrix; encode it in a sklearn Pipeline"
            )


def _output_name(data: bytes, task: str) -> str:
    """``probabilities`` of a classifier (the last tensor output), else the first."""
    session = _new_session(data)
    tensors = [o.name for o in session.get_outputs() if o.type.startswith("tensor(")]
    if not tensors:
        raise ModelError("the converted model has no tensor output")
    if task == "classification":
        named = [n for n in tensors if "prob" in n.lower()]
        return named[0] if named else tensors[-1]
    return tensors[0]


def _new_session(data: bytes) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _column(column: pd.Series, kind: str) -> np.ndarray:
    import numpy as np

    if kind in _TEXT_TYPES:
        return column.to_numpy(dtype=object, na_value="").reshape(-1, 1)
    return column.to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)


def _max_abs_diff(expected: np.ndarray, actual: np.ndarray) -> float:
    import numpy as np

    if not np.array_equal(np.isnan(expected), np.isnan(actual)):
        return float("inf")
    both = ~np.isnan(expected)
    return float(np.max(np.abs(expected[both] - actual[both]), initial=0.0))


@contextmanager
def _boolean_attributes_as_ints() -> Iterator[None]:
    """skl2onnx 1.20 passes Python booleans in an integer list attribute of tree
    ensembles converted from scikit-learn >= 1.6 histogram gradient boosting (missing
    values' direction), which onnx rejects; they are the integers 0 and 1."""
    from skl2onnx.common._container import ModelComponentContainer

    original = ModelComponentContainer.add_node

    def add_node(self: Any, *args: Any, **attributes: Any) -> Any:
        fixed = {k: _ints_for_bools(v) for k, v in attributes.items()}
        return original(self, *args, **fixed)

    ModelComponentContainer.add_node = add_node
    try:
        yield
    finally:
        ModelComponentContainer.add_node = original


def _ints_for_bools(value: Any) -> Any:
    if isinstance(value, list) and any(isinstance(v, bool) for v in value):
        return [int(v) if isinstance(v, bool) else v for v in value]
    return value


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= 400 else line[:397] + "..."
