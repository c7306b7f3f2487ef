"""The ``Model`` artifact: an estimator with everything needed to use it elsewhere.

A model carries its flavor (how it is stored), its signature (input columns and types,
output), an input example, the task, the statistics of its training data (the reference
for skew detection when it serves) and the packages it needs, with versions.

>>> import pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
>>> model = Model.from_estimator(LogisticRegression().fit(X, [0, 0, 1, 1]), X)
>>> model.flavor, model.task, model.signature.input_names
('sklearn', 'classification', ['x'])
>>> model.predict([{"x": 3.0}]).round(2).tolist()  # probability of the positive class
[0.79]
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ctloop.artifacts.model._compat import check_requirements
from ctloop.artifacts.model._flavors import PythonModel, flavor_for, flavor_named
from ctloop.artifacts.model._signature import ColumnSpec, Signature, infer_signature
from ctloop.errors import ModelError, SignatureError, UnsafeModelError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ctloop.artifacts.model._onnx import OnnxModel
    from ctloop.artifacts.model._transform import Transform

__all__ = ["MODEL_FILE", "TASKS", "Model"]

MODEL_FILE = "model.json"
"""The model's description, next to ``estimator/`` (the flavor's files)."""
TASKS = ("classification", "regression", "other")
_EXAMPLE_FILE = "input_example.json"
_STATISTICS_FILE = "training_statistics.json"
_ESTIMATOR_DIR = "estimator/"


class Model:
    """A trained estimator with its flavor, signature, example, statistics and needs.

    ``predict`` validates input against the signature (a wrong column is a
    :class:`~ctloop.errors.SignatureError` naming it) and returns the model's output: the
    positive-class probability of a binary classifier, the value of a regressor, else
    the estimator's ``predict``.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        flavor: str,
        signature: Signature,
        task: str = "other",
        input_example: list[dict[str, Any]] | None = None,
        training_statistics: dict[str, Any] | None = None,
        requirements: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
        trusted: bool = False,
        transform: Transform | None = None,
        transform_signature: Signature | None = None,
    ) -> None:
        if task not in TASKS:
            raise ModelError(f"task {task!r} is not one of {', '.join(TASKS)}")
        self.estimator = estimator
        self.flavor = flavor
        self.signature = signature
        self.task = task
        self.input_example = input_example
        self.training_statistics = training_statistics
        self.requirements = dict(requirements or {})
        self.metadata = dict(metadata or {})
        self.trusted = trusted
        self.transform = transform
        """The :class:`~ctloop.artifacts.model.Transform` that serving applies around
        the estimator (:meth:`prepare_request`, :meth:`answer`), or ``None``."""
        self.transform_signature = transform_signature
        """What a client of the transform sends and reads: the raw fields (``inputs``)
        and the transform's outputs (``outputs``), or ``None`` when unknown (a
        transform takes the fields it reads; see :func:`transform_signature_of`)."""
        self.compiled: OnnxModel | None = None
        """The ONNX form accepted by :func:`~ctloop.artifacts.model._onnx.compile_onnx`."""
        self.compiled_info: dict[str, Any] = {}
        self.use_compiled = True
        """Set False to predict with the original estimator even when compiled."""
        self.compiled_fallbacks = 0
        """Predictions that fell back to the original after an ONNX Runtime error."""

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        X: pd.DataFrame,
        *,
        task: str | None = None,
        training_statistics: Any = None,
        trusted: bool = False,
        requirements: Mapping[str, str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        example_rows: int = 5,
        transform: Transform | None = None,
        raw_example: Any = None,
    ) -> Model:
        """A model of a fitted ``estimator`` trained on ``X`` (its columns and types
        become the signature; its first rows the input example).

        ``training_statistics`` is a ``ctloop.data.Statistics`` (or its dict form);
        ``requirements`` adds distributions to the ones the flavor needs. An estimator
        that only pickle could save raises :class:`~ctloop.errors.UnsafeModelError`
        unless ``trusted``. ``transform`` (a :class:`~ctloop.artifacts.model.Transform`)
        turns requests into frames like ``X`` and predictions into answers when served;
        ``raw_example`` (rows as a client sends them: records, columns or a DataFrame) is
        run through it once to record the fields it reads and the outputs it answers,
        which servers describe (V2 metadata, OpenAPI). A transform class may declare them
        instead, as its ``signature`` attribute.
        """
        flavor = flavor_for(estimator, trusted=trusted)
        task = task or _task_of(estimator)
        output = ColumnSpec("probability" if task == "classification" else "prediction", "float")
        signature = infer_signature(X, outputs=(output,))
        example = orjson.loads(X.head(example_rows).to_json(orient="records", date_format="iso"))
        stats = training_statistics
        if stats is not None and not isinstance(stats, Mapping):
            stats = stats.to_dict()
        model = cls(
            estimator,
            flavor=flavor.name,
            signature=signature,
            task=task,
            input_example=example,
            training_statistics=None if stats is None else dict(stats),
            requirements={**flavor.requirements(estimator), **dict(requirements or {})},
            metadata=dict(metadata or {}),
            trusted=trusted,
            transform=transform,
        )
        if transform is not None:
            from ctloop.artifacts.model._transform import transform_signature_of

            model.transform_signature = transform_signature_of(model, raw_example)
        elif raw_example is not None:
            raise ModelError("raw_example is run through a transform; pass transform= too")
        return model

    # -- predicting ----------------------------------------------------------------

    def prepare(self, data: Any, *, allow_extra: bool = False) -> pd.DataFrame:
        """``data`` checked against the signature and converted to the model's types."""
        return self.signature.to_frame(data, allow_extra=allow_extra)

    def predict(self, data: Any, *, allow_extra: bool = False) -> np.ndarray:
        """The model's output for the rows of ``data`` (records, columns or a DataFrame)."""
        frame = self.prepare(data, allow_extra=allow_extra)
        return self.predict_frame(frame)

    # -- serving: the transform around the estimator ---------------------------------

    def prepare_request(self, data: Any) -> pd.DataFrame:
        """The checked frame for a request's rows: :meth:`prepare` without a transform,
        else the transform's ``preprocess`` of the rows as records, checked against the
        signature (a :class:`~ctloop.errors.SignatureError` names the column, a
        :class:`~ctloop.errors.TransformError` the transform's own failure)."""
        if self.transform is None:
            return self.prepare(data)
        from ctloop.artifacts.model._transform import apply_preprocess, as_records

        return apply_preprocess(self.transform, as_records(data), self.signature)

    def answer(self, predictions: np.ndarray, data: Any) -> dict[str, np.ndarray] | None:
        """The transform's ``postprocess`` of ``predictions`` for the request's rows
        ``data``: output name → one value per row; ``None`` without a transform."""
        if self.transform is None:
            return None
        from ctloop.artifacts.model._transform import apply_postprocess, as_records

        return apply_postprocess(self.transform, predictions, as_records(data))

    def predict_request(self, data: Any) -> dict[str, np.ndarray]:
        """What a server answers for ``data``: the transform's outputs, or
        ``{"prediction": …}`` for a model without one.

        >>> model.predict_request([{"dep_time": 715, "carrier": "UA"}])  # doctest: +SKIP
        {'probability': array([0.21]), 'late': array([False])}
        """
        predictions = self.predict_frame(self.prepare_request(data))
        return self.answer(predictions, data) or {"prediction": predictions}

    @property
    def runtime(self) -> str:
        """``"onnx"`` when a compiled form is attached and in use, else ``"native"``."""
        return "onnx" if self.compiled is not None and self.use_compiled else "native"

    def attach_compiled(self, compiled: OnnxModel | None, info: Mapping[str, Any]) -> None:
        """Use ``compiled`` for :meth:`predict_frame` (``None`` detaches it); ``info``
        (measured difference, tolerance) is kept in ``model.json``."""
        self.compiled = compiled
        self.compiled_info = dict(info) if compiled is not None else {}

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Like :meth:`predict` for a frame already :meth:`prepare`-d (no checks).

        With a compiled form in use, ONNX Runtime predicts; on any error of its own
        the original estimator does, and ``compiled_fallbacks`` counts it."""
        if self.compiled is not None and self.use_compiled:
            try:
                return self.compiled.predict(frame)
            except Exception:  # any runtime failure: the original is the fallback
                self.compiled_fallbacks += 1
        return self.predict_native(frame)

    def predict_plain_records(self, records: list[dict[str, Any]]) -> np.ndarray | None:
        """Predictions for records whose values already have their columns' exact types
        (:func:`ctloop.serve._fastpath.plain_records`), straight from the compiled form
        without building a DataFrame; ``None`` when no compiled form is in use or it
        failed (counted in ``compiled_fallbacks``): then :meth:`prepare` and
        :meth:`predict_frame`."""
        if self.compiled is None or not self.use_compiled or self.transform is not None:
            return None
        try:
            return self.compiled.predict_records(records)
        except Exception:  # any runtime failure: the caller takes the checked path
            self.compiled_fallbacks += 1
            return None

    def predict_native(self, frame: pd.DataFrame) -> np.ndarray:
        """:meth:`predict_frame` with the original estimator, never the compiled form.

        Floating-point overflow or underflow inside the estimator (an extreme but valid
        input) gives the IEEE result (``inf``, ``0``) without a warning, so an answer
        never depends on the process's warning filters; ``numpy.errstate`` is local to
        the calling thread."""
        import numpy as np

        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            try:
                return self._predict_estimator(frame)
            except (ValueError, TypeError) as exc:
                raw = _text_columns(frame, self.signature.inputs)
                if not raw:
                    raise
                raise SignatureError(
                    f"the {self.flavor} model could not predict ({str(exc).splitlines()[0]}): "
                    f"column(s) {', '.join(map(repr, raw))} hold raw text, but predict_frame "
                    "takes rows already converted to the model's types; call "
                    "Model.predict(rows, allow_extra=True), which checks and converts them"
                ) from exc

    def _predict_estimator(self, frame: pd.DataFrame) -> np.ndarray:
        import numpy as np

        if self.task == "classification" and hasattr(self.estimator, "predict_proba"):
            proba = np.asarray(self.estimator.predict_proba(frame))
            return proba[:, 1] if proba.ndim == 2 and proba.shape[1] == 2 else proba
        return np.asarray(self.estimator.predict(frame))

    def predict_labels(self, data: Any) -> np.ndarray:
        """The estimator's own ``predict`` (class labels of a classifier)."""
        import numpy as np

        return np.asarray(self.estimator.predict(self.prepare(data)))

    def example_frame(self) -> pd.DataFrame:
        """The input example as a DataFrame of the signature's types."""
        if not self.input_example:
            raise ModelError("this model has no input example; build it with from_estimator")
        return self.prepare(self.input_example)

    # -- files ---------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The contents of ``model.json``: everything but the estimator's files."""
        from ctloop._version import __version__

        return {
            "flavor": self.flavor,
            "task": self.task,
            "signature": self.signature.to_dict(),
            "requirements": self.requirements,
            "metadata": self.metadata,
            "ctloop_version": __version__,
            **(
                {} if self.transform is None else {"transform": {"class": self.transform.reference}}
            ),
        }

    def save(self, directory: Path | str) -> dict[str, Any]:
        """Write the model into the empty or new folder ``directory``; return its
        description (flavor properties included)."""
        directory = Path(directory)
        (directory / _ESTIMATOR_DIR).mkdir(parents=True, exist_ok=True)
        flavor = flavor_named(self.flavor)
        if flavor.name == "pickle" and not self.trusted:
            raise UnsafeModelError(
                "this model would be saved with pickle, but it was not marked trusted; "
                "pass trusted=True to Model.from_estimator if you trust its source"
            )
        properties = flavor.save(self.estimator, directory / _ESTIMATOR_DIR)
        description = {**self.describe(), "flavor_properties": properties}
        if self.transform is not None:
            from ctloop.artifacts.model._transform import TRANSFORM_DIR, save_transform

            description["transform"] = save_transform(self.transform, directory / TRANSFORM_DIR)
            if self.transform_signature is not None:
                description["transform"]["signature"] = self.transform_signature.to_dict()
        if self.compiled is not None:
            (directory / "onnx").mkdir(exist_ok=True)
            (directory / "onnx" / "model.onnx").write_bytes(self.compiled.data)
            description["onnx"] = {**self.compiled.describe(), **self.compiled_info}
        (directory / MODEL_FILE).write_bytes(orjson.dumps(description, option=_JSON))
        if self.input_example is not None:
            (directory / _EXAMPLE_FILE).write_bytes(orjson.dumps(self.input_example))
        if self.training_statistics is not None:
            (directory / _STATISTICS_FILE).write_bytes(orjson.dumps(self.training_statistics))
        return description

    @classmethod
    def load(cls, directory: Path | str, *, trusted: bool = False) -> Model:
        """The model saved in ``directory`` (see :meth:`save`)."""
        root = Path(directory)
        files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
        return cls.from_files(files, trusted=trusted)

    @classmethod
    def from_files(cls, files: Mapping[str, Path], *, trusted: bool = False) -> Model:
        """The model from its files (relative name → local path): checks that the
        packages it needs are installed, then loads the estimator with its flavor."""
        if MODEL_FILE not in files:
            raise ModelError(
                f"no {MODEL_FILE} among the files {sorted(files)[:5]}; this is not a "
                "ctloop model (save one with Model.save or return it from a step)"
            )
        description = orjson.loads(files[MODEL_FILE].read_bytes())
        flavor = flavor_named(description["flavor"])
        if flavor.name == "pickle" and not trusted:
            raise UnsafeModelError(
                "this model is stored as a pickle, and loading a pickle runs arbitrary "
                "code; load it with trusted=True (or CTLOOP_TRUST_PICKLE=1) only if you "
                "trust everyone who could have written it"
            )
        check_requirements(description.get("requirements", {}))
        estimator_files = {
            name.removeprefix(_ESTIMATOR_DIR): path
            for name, path in files.items()
            if name.startswith(_ESTIMATOR_DIR)
        }
        estimator = flavor.load(estimator_files, description.get("flavor_properties", {}))
        model = cls(
            estimator,
            flavor=flavor.name,
            signature=Signature.from_dict(description["signature"]),
            task=description.get("task", "other"),
            input_example=_optional_json(files, _EXAMPLE_FILE),
            training_statistics=_optional_json(files, _STATISTICS_FILE),
            requirements=description.get("requirements", {}),
            metadata=description.get("metadata", {}),
            trusted=trusted,
            transform=_load_transform(files, description.get("transform")),
            transform_signature=_transform_signature(description.get("transform")),
        )
        if "onnx" in description:
            _load_compiled(model, files, description["onnx"])
        return model

    def __repr__(self) -> str:
        return (
            f"Model(flavor={self.flavor!r}, task={self.task!r}, "
            f"inputs={self.signature.input_names!r})"
        )


_JSON = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def _load_compiled(model: Model, files: Mapping[str, Path], entry: Mapping[str, Any]) -> None:
    from ctloop.artifacts.model._onnx import load_compiled

    compiled = load_compiled(files, entry, model.signature, model.task)
    info = {k: v for k, v in entry.items() if k in ("max_abs_diff", "tolerance")}
    model.attach_compiled(compiled, info)


def _load_transform(files: Mapping[str, Path], entry: Any) -> Transform | None:
    if entry is None:
        return None
    from ctloop.artifacts.model._transform import TRANSFORM_DIR, load_transform

    own = {
        name.removeprefix(TRANSFORM_DIR): path
        for name, path in files.items()
        if name.startswith(TRANSFORM_DIR)
    }
    return load_transform(entry if isinstance(entry, Mapping) else {"class": entry}, own)


def _transform_signature(entry: Any) -> Signature | None:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("signature"), Mapping):
        return None
    return Signature.from_dict(entry["signature"])


def _optional_json(files: Mapping[str, Path], name: str) -> Any:
    return orjson.loads(files[name].read_bytes()) if name in files else None


def _task_of(estimator: Any) -> str:
    if isinstance(estimator, PythonModel):
        return "other"
    estimator_type = getattr(estimator, "_estimator_type", None)
    if estimator_type is None:
        try:
            from sklearn.base import is_classifier, is_regressor

            if is_classifier(estimator):
                return "classification"
            if is_regressor(estimator):
                return "regression"
        except Exception:  # an object sklearn's tags machinery does not understand
            return "other"
    if estimator_type == "classifier" or hasattr(estimator, "predict_proba"):
        return "classification"
    return "regression" if estimator_type == "regressor" else "other"


def _text_columns(frame: pd.DataFrame, inputs: tuple[ColumnSpec, ...]) -> list[str]:
    """The columns of ``frame`` holding plain text (object or string dtype, not category)
    where the signature ``inputs`` do not take text."""
    import pandas as pd

    text = {spec.name for spec in inputs if spec.type == "string"}
    return [
        str(name)
        for name, dtype in frame.dtypes.items()
        if name not in text
        and not isinstance(dtype, pd.CategoricalDtype)
        and pd.api.types.is_string_dtype(dtype)
    ]
