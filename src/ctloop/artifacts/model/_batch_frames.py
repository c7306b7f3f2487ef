"""Chunks of Arrow data as the DataFrame a model's signature describes.

:func:`to_model_frame` gives what :meth:`~ctloop.artifacts.model.Model.prepare` would,
column by column from Arrow (no per-value Python checks), so a chunk of a million rows
converts in milliseconds; a column of the wrong type is an error naming the column, the
chunk and the row.

>>> frame = to_model_frame(model, record_batch)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctloop.errors import BatchPredictionError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from ctloop.artifacts.model import ColumnSpec, Model

__all__ = ["Where", "to_model_frame"]


@dataclass(frozen=True)
class Where:
    """Where a chunk came from, for error messages."""

    source: str
    chunk: int
    first_row: int

    def rows(self, count: int) -> str:
        """``chunk 2 (rows 200-299) of data.parquet``."""
        last = self.first_row + max(count - 1, 0)
        return f"chunk {self.chunk} (rows {self.first_row}-{last}) of {self.source}"

    def row(self, position: int) -> str:
        """``row 217 (chunk 2) of data.parquet`` for the chunk's ``position``."""
        return f"row {self.first_row + position} (chunk {self.chunk}) of {self.source}"


def to_model_frame(model: Model, batch: pa.RecordBatch, where: Any = None) -> pd.DataFrame:
    """The chunk's model columns as the DataFrame :meth:`Model.prepare` would give,
    converted from Arrow column by column (no per-value Python checks)."""
    import pandas as pd

    where = where or Where("input", 0, 0)
    columns = {
        spec.name: _convert(batch.column(spec.name), spec, where) for spec in model.signature.inputs
    }
    return pd.DataFrame(columns, copy=False)


def _convert(array: pa.Array, spec: ColumnSpec, where: Where) -> Any:
    import pyarrow as pa

    kind = array.type
    if pa.types.is_dictionary(kind):
        array, kind = array.cast(kind.value_type), kind.value_type
    if spec.type in ("integer", "float") and _is_number(kind):
        return _numeric(array, spec, where)
    if spec.type == "boolean" and pa.types.is_boolean(kind):
        return _boolean(array)
    if spec.type in ("string", "category") and _is_text(kind):
        return _category(array, spec) if spec.type == "category" else _text(array)
    if spec.type == "datetime" and (pa.types.is_timestamp(kind) or pa.types.is_date(kind)):
        return array.to_pandas()
    if pa.types.is_null(kind):
        return _all_missing(array, spec)
    raise _wrong_type(array, spec, where)


def _is_number(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    )


def _is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _numeric(array: pa.Array, spec: ColumnSpec, where: Where) -> np.ndarray:
    import numpy as np

    values = array.to_numpy(zero_copy_only=False)
    values = values.astype(np.float64) if values.dtype.kind not in "if" else values
    if spec.type == "float":
        return values.astype(np.float64, copy=False)
    if values.dtype.kind == "f":
        fractional = ~np.isnan(values) & (values % 1 != 0)
        if fractional.any():
            position = int(fractional.nonzero()[0][0])
            raise BatchPredictionError(
                f"column {spec.name!r} expects integer values but {where.row(position)} "
                f"has {values[position]!r}; round it or retrain with a float column"
            )
        return values.astype(np.int64) if not np.isnan(values).any() else values
    return values.astype(np.int64, copy=False)


def _boolean(array: pa.Array) -> Any:
    import pandas as pd

    if array.null_count:
        return pd.array(array.to_pylist(), dtype="boolean")
    return array.to_numpy(zero_copy_only=False)


def _text(array: pa.Array) -> np.ndarray:

    values: np.ndarray = array.to_numpy(zero_copy_only=False)
    return values.astype(object, copy=False)


def _category(array: pa.Array, spec: ColumnSpec) -> Any:
    """Codes against the training categories (unseen values and nulls become missing),
    mapped once per distinct value rather than per row."""
    import numpy as np
    import pandas as pd

    if spec.categories is None:
        return pd.Categorical(_text(array))
    encoded = array.dictionary_encode()
    categories = pd.Index(list(spec.categories))
    lookup = categories.get_indexer(encoded.dictionary.to_numpy(zero_copy_only=False))
    indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    codes = np.where(indices >= 0, lookup[np.maximum(indices, 0)] if len(lookup) else -1, -1)
    dtype = pd.CategoricalDtype(categories)
    return pd.Categorical.from_codes(codes.astype(np.int64), dtype=dtype)


def _all_missing(array: pa.Array, spec: ColumnSpec) -> Any:
    import numpy as np
    import pandas as pd

    if spec.type in ("integer", "float"):
        return np.full(len(array), np.nan)
    if spec.type == "category":
        return pd.Categorical([None] * len(array), categories=list(spec.categories or ()))
    return np.full(len(array), None, dtype=object)


def _wrong_type(array: pa.Array, spec: ColumnSpec, where: Where) -> BatchPredictionError:
    valid = array.is_valid().to_numpy(zero_copy_only=False).nonzero()[0]
    position = int(valid[0]) if len(valid) else 0
    value = array[position].as_py() if len(array) else None
    return BatchPredictionError(
        f"column {spec.name!r} is {array.type} in the input, but the model reads "
        f"{spec.type} values: {where.row(position)} has {value!r}; convert the column "
        "or score with a model trained on this type"
    )
