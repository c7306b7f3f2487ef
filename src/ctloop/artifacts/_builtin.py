"""The built-in materializers: tables, arrays, scikit-learn models, JSON values, files.

Each one imports its library inside ``save``/``load`` so that importing ctloop stays
cheap. Lookup order (first match wins) is the order of :func:`builtin_materializers`.

============================  ==============  ==========================================
value                         artifact type   on disk
============================  ==============  ==========================================
``pandas.DataFrame``          ``Dataset``     ``data.parquet`` (index kept unless a
                                              RangeIndex; dtypes round-trip)
``pyarrow.Table``             ``Dataset``     ``data.parquet``; loads as a Table
``numpy.ndarray``             ``Array``       ``array.npy``, never pickled (object
                                              arrays are refused)
scikit-learn estimator        ``Model``       ``model.skops`` (skops, never pickle)
``pathlib.Path``              ``Files``       the file, or the folder's files
record classes (statistics,   ``Statistics``  one JSON file, or YAML for a schema
schema, anomalies, drift)     ``Schema`` …    (see :mod:`ctloop.artifacts.records`)
dict, list, tuple, str, int,  ``JSON``        ``value.json`` (see :class:`JsonMaterializer`)
float, bool, None
============================  ==============  ==========================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ctloop.artifacts._io import BytesMaterializer
from ctloop.artifacts._materializer import Materializer
from ctloop.artifacts.sklearn_skops import SklearnMaterializer, _file, _qualified_name
from ctloop.errors import ArtifactError

__all__ = [
    "ArrowTableMaterializer",
    "JsonMaterializer",
    "NumpyMaterializer",
    "PandasMaterializer",
    "SklearnMaterializer",
    "builtin_materializers",
]


def builtin_materializers() -> list[Materializer]:
    """A fresh instance of every built-in materializer, in lookup order."""
    from ctloop.artifacts._snapshot import FilesMaterializer, SnapshotMaterializer
    from ctloop.artifacts.model._materializer import ModelMaterializer
    from ctloop.artifacts.records import record_materializers

    return [
        ModelMaterializer(),
        PandasMaterializer(),
        ArrowTableMaterializer(),
        NumpyMaterializer(),
        SklearnMaterializer(),
        FilesMaterializer(),
        *record_materializers(),
        JsonMaterializer(),
        SnapshotMaterializer(),
    ]


# -- tables --------------------------------------------------------------------------


class PandasMaterializer(Materializer):
    """A pandas DataFrame as Parquet. Properties: ``rows`` and ``columns`` (name and
    dtype). A non-default index is kept; categoricals, datetimes with time zones and
    nullable dtypes come back as they were."""

    name = "ctloop.pandas"
    artifact_type = "Dataset"
    handles = ("pandas.DataFrame", "pandas.core.frame.DataFrame")

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        """Write ``data.parquet``."""
        _check_column_names(value)
        try:
            value.to_parquet(directory / "data.parquet", engine="pyarrow", index=None)
        except (ValueError, TypeError, NotImplementedError, ImportError) as exc:
            raise ArtifactError(
                f"the DataFrame could not be written as Parquet ({exc}); give it string "
                "column names and one type per column (e.g. df[col].astype(str))"
            ) from exc
        return {
            "rows": len(value),
            "columns": [{"name": str(c), "dtype": str(t)} for c, t in value.dtypes.items()],
        }

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read ``data.parquet`` into a DataFrame."""
        import pandas as pd

        return pd.read_parquet(_file(files, "data.parquet", "Dataset"), engine="pyarrow")


def _check_column_names(frame: Any) -> None:
    """Parquet names columns with strings; anything else would come back changed."""
    for column in frame.columns:
        if not isinstance(column, str):
            raise ArtifactError(
                f"the DataFrame's column {column!r} has a name of type "
                f"{_qualified_name(column)}, but Parquet column names are strings; "
                "rename the columns first (df.columns = df.columns.map(str))"
            )


class ArrowTableMaterializer(Materializer):
    """A pyarrow Table as Parquet; loads back as a Table."""

    name = "ctloop.arrow"
    artifact_type = "Dataset"
    handles = ("pyarrow.Table", "pyarrow.lib.Table")

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        """Write ``data.parquet``."""
        import pyarrow.parquet as pq

        try:
            pq.write_table(value, directory / "data.parquet")
        except Exception as exc:  # pyarrow raises its own families (ArrowInvalid, …)
            raise ArtifactError(
                f"the Arrow table could not be written as Parquet ({exc}); cast the "
                "offending column to a Parquet-compatible type"
            ) from exc
        features = (value.schema.metadata or {}).get(b"ctloop.features")
        return {
            "rows": value.num_rows,
            "columns": [{"name": f.name, "dtype": str(f.type)} for f in value.schema],
            **({} if features is None else {"features": json.loads(features)}),
        }

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read ``data.parquet`` into a Table."""
        import pyarrow.parquet as pq

        return pq.read_table(_file(files, "data.parquet", "Dataset"))


# -- arrays --------------------------------------------------------------------------


class NumpyMaterializer(Materializer):
    """A numpy array as ``.npy`` with ``allow_pickle=False``. Arrays of Python
    objects are refused, because only pickle could store them."""

    name = "ctloop.numpy"
    artifact_type = "Array"
    handles = ("numpy.ndarray",)

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        """Write ``array.npy``."""
        import numpy as np

        if isinstance(value, np.ma.MaskedArray):
            raise ArtifactError(
                "a numpy masked array cannot be stored (its mask would be lost); return "
                "value.filled(...) or the data and the mask as two outputs"
            )
        if value.dtype.hasobject:
            raise ArtifactError(
                f"a numpy array of dtype {value.dtype} holds Python objects, which only "
                "pickle could store; convert it (e.g. array.astype(str) or float) or "
                "return a DataFrame"
            )
        np.save(directory / "array.npy", np.asarray(value), allow_pickle=False)
        return {"shape": list(value.shape), "dtype": str(value.dtype)}

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read ``array.npy``."""
        import numpy as np

        return np.load(_file(files, "array.npy", "Array"), allow_pickle=False)


# -- models --------------------------------------------------------------------------


# -- JSON ----------------------------------------------------------------------------

_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


class JsonMaterializer(BytesMaterializer):
    """JSON values: dict (string keys), list, tuple, str, int, float, bool, None.

    Round-trips exactly, with three documented exceptions: tuples come back as
    lists, numpy scalars and arrays nested in a value come back as Python numbers
    and lists, and subclasses of str/int/float come back as the base type.
    NaN and ±infinity round-trip: such values are written as the ``NaN`` and
    ``Infinity`` literals that Python's ``json`` module reads (property
    ``encoding: python``); so are integers beyond 64 bits.
    """

    name = "ctloop.json"
    artifact_type = "JSON"
    handles = (
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.str",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "builtins.NoneType",
        "numpy.integer",
        "numpy.floating",
        "numpy.bool",
    )

    def to_bytes(self, value: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        """``value.json`` and the properties ``python_type`` (and ``encoding``)."""
        data, encoding = _encode_json(value)
        properties: dict[str, Any] = {"python_type": type(value).__name__}
        if encoding != "json":
            properties["encoding"] = encoding
        return {"value.json": data}, properties

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Read ``value.json``."""
        data = _file(files, "value.json", "JSON").read_bytes()
        if properties.get("encoding") == "python":
            return json.loads(data)
        import orjson

        return orjson.loads(data)


def _encode_json(value: Any) -> tuple[bytes, str]:
    """``value`` as JSON bytes and the encoding used: ``json`` (standard, via orjson)
    or ``python`` (non-finite floats or big integers, via the ``json`` module)."""
    try:
        if not _scan(value, "the value"):
            import orjson

            try:
                return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY), "json"
            except orjson.JSONEncodeError:  # e.g. nesting deeper than orjson allows
                pass
        return _encode_python(value), "python"
    except (RecursionError, ValueError):
        raise ArtifactError(
            "the value nests too deeply or contains itself, so it cannot be stored as "
            "JSON; flatten it or return a DataFrame"
        ) from None


def _encode_python(value: Any) -> bytes:
    text = json.dumps(value, allow_nan=True, ensure_ascii=False, default=_numpy_to_python)
    return text.encode()


def _numpy_to_python(value: Any) -> Any:
    return value.tolist()


def _scan(value: Any, where: str) -> bool:
    """Check that ``value`` is JSON; return True when only Python's ``json`` module
    can write it faithfully (non-finite floats, integers beyond 64 bits)."""
    if value is None or isinstance(value, str | bool):
        return False
    if isinstance(value, int):
        return not _INT64_MIN <= value <= _UINT64_MAX
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return _scan_dict(value, where)
    if isinstance(value, list | tuple):
        needs = False
        for i, item in enumerate(value):
            needs = _scan(item, f"{where}[{i}]") or needs
        return needs
    if type(value).__module__ == "numpy":
        return _scan_numpy(value, where)
    raise ArtifactError(
        f"{where} has type {_qualified_name(value)}, which JSON cannot hold; convert it "
        "(e.g. to str or float), return a DataFrame, or register a materializer with "
        "ctloop.register_materializer"
    )


def _scan_dict(value: dict[Any, Any], where: str) -> bool:
    needs = False
    for key, item in value.items():
        if not isinstance(key, str):
            raise ArtifactError(
                f"{where} has the key {key!r} of type {_qualified_name(key)}, but JSON "
                "object keys are strings; convert the keys with str() or return a DataFrame"
            )
        needs = _scan(item, f"{where}[{key!r}]") or needs
    return needs


def _scan_numpy(value: Any, where: str) -> bool:
    import numpy as np

    if isinstance(value, np.ndarray) and value.dtype.hasobject:
        raise ArtifactError(
            f"{where} is a numpy array of dtype object, which JSON cannot hold safely; "
            "convert it with .tolist() or astype(...)"
        )
    kind = value.dtype.kind if isinstance(value, np.ndarray | np.generic) else ""
    if kind == "f":
        return not bool(np.isfinite(value).all())
    if kind in ("b", "i", "u"):
        return False
    raise ArtifactError(
        f"{where} has type {_qualified_name(value)}, which JSON cannot hold; convert it "
        "with .item() or .tolist()"
    )
