"""A model's signature: the input columns it expects (name and type) and what it returns.

A signature checks and converts input before it reaches the model, so that a caller's
mistake is a sentence naming the column instead of a stack trace from inside a library:

>>> sig = Signature.from_dict({"inputs": [{"name": "hour", "type": "integer"},
...                                       {"name": "carrier", "type": "category"}],
...                            "outputs": [{"name": "probability", "type": "float"}]})
>>> sig.to_frame([{"hour": 7, "carrier": "UA"}]).dtypes.astype(str).tolist()
['int64', 'category']
>>> sig.to_frame([{"hour": "seven", "carrier": "UA"}])
Traceback (most recent call last):
...
ctloop.errors.SignatureError: column 'hour' expects integer values but row 0 has 'seven' (str)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from ctloop.artifacts.model import _records_fast as records_fast
from ctloop.errors import SignatureError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["COLUMN_TYPES", "ColumnSpec", "Signature", "infer_signature"]

COLUMN_TYPES = ("integer", "float", "boolean", "string", "category", "datetime")
"""The column types a signature knows, in the words of a JSON client."""

_MAX_CATEGORIES = 1000


@dataclass(frozen=True)
class ColumnSpec:
    """One input or output column: its name, type (one of :data:`COLUMN_TYPES`) and, for
    categories seen in training, their values (for documentation and skew checks)."""

    name: str
    type: str
    categories: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise SignatureError(
                f"column {self.name!r} has type {self.type!r}, which is not one of "
                f"{', '.join(COLUMN_TYPES)}",
                field=self.name,
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"name": …, "type": …}`` (plus ``categories`` when known)."""
        data: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.categories is not None:
            data["categories"] = list(self.categories)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSpec:
        """Read :meth:`to_dict`'s form."""
        categories = data.get("categories")
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            categories=None if categories is None else tuple(str(c) for c in categories),
        )


@dataclass(frozen=True)
class Signature:
    """The columns a model reads (``inputs``) and the values it returns (``outputs``)."""

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = field(default_factory=tuple)

    @property
    def input_names(self) -> list[str]:
        """The input column names, in order."""
        return [column.name for column in self.inputs]

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [c.to_dict() for c in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Read :meth:`to_dict`'s form."""
        return cls(
            inputs=tuple(ColumnSpec.from_dict(c) for c in data.get("inputs", [])),
            outputs=tuple(ColumnSpec.from_dict(c) for c in data.get("outputs", [])),
        )

    def to_frame(self, data: Any, *, allow_extra: bool = False) -> pd.DataFrame:
        """``data`` as a DataFrame with exactly the input columns, in order, each of its
        declared type; :class:`SignatureError` naming the column otherwise.

        ``data`` is a DataFrame, a list of records (dicts) or a dict of columns (lists).
        Extra columns are an error unless ``allow_extra`` (then they are dropped).
        """
        if _is_rows(data):
            data = self._records_of_rows(data)
        if _is_records(data) and records_fast.supports(self.inputs):
            return records_fast.records_to_frame(data, self.inputs, allow_extra=allow_extra)
        frame = _as_frame(data)
        self._check_columns(frame, allow_extra)
        import pandas as pd

        columns = {spec.name: _convert(frame[spec.name], spec) for spec in self.inputs}
        return pd.DataFrame(columns, index=frame.index)

    def _records_of_rows(self, rows: list[Any]) -> list[dict[str, Any]]:
        """Rows of values in the input order (MLflow's tensor input) as records."""
        names = self.input_names
        for i, row in enumerate(rows):
            if not isinstance(row, list | tuple):
                raise SignatureError(
                    f"row {i} is {type(row).__name__}, but row 0 is a list of values; send "
                    "every row as a list of values, or every row as an object"
                )
            if len(row) != len(names):
                raise SignatureError(
                    f"row {i} has {len(row)} values, but a row of values needs one per input "
                    f"column, {len(names)} in this order: {', '.join(names)}"
                )
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _check_columns(self, frame: pd.DataFrame, allow_extra: bool) -> None:
        names = [str(c) for c in frame.columns]
        missing = [n for n in self.input_names if n not in names]
        if missing:
            raise SignatureError(
                f"input is missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(m) for m in missing)}; the model reads "
                f"{', '.join(self.input_names)}",
                field=missing[0],
            )
        extra = [n for n in names if n not in set(self.input_names)]
        if extra and not allow_extra:
            raise SignatureError(
                f"input has unexpected column{'s' if len(extra) > 1 else ''} "
                f"{', '.join(repr(e) for e in extra)}; the model reads only "
                f"{', '.join(self.input_names)}",
                field=extra[0],
            )


def infer_signature(X: pd.DataFrame, outputs: Sequence[ColumnSpec] = ()) -> Signature:
    """The signature of a model trained on the DataFrame ``X``.

    >>> import pandas as pd
    >>> infer_signature(pd.DataFrame({"a": [1], "b": ["x"]})).input_names
    ['a', 'b']
    """
    import pandas as pd

    if not isinstance(X, pd.DataFrame):
        raise SignatureError(
            f"a signature is inferred from a pandas DataFrame, not {type(X).__name__}; "
            "train on a DataFrame with named columns"
        )
    return Signature(
        inputs=tuple(_column_spec(str(name), X[name]) for name in X.columns),
        outputs=tuple(outputs),
    )


def _column_spec(name: str, column: pd.Series) -> ColumnSpec:
    import pandas as pd

    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if len(dtype.categories) > _MAX_CATEGORIES:
            return ColumnSpec(name, "category")
        return ColumnSpec(name, "category", tuple(str(c) for c in dtype.categories))
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnSpec(name, "boolean")
    if pd.api.types.is_integer_dtype(dtype):
        return ColumnSpec(name, "integer")
    if pd.api.types.is_float_dtype(dtype):
        return ColumnSpec(name, "float")
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ColumnSpec(name, "datetime")
    return ColumnSpec(name, "string")


def _is_rows(data: Any) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], list | tuple)


def _is_records(data: Any) -> bool:
    return isinstance(data, list) and all(isinstance(r, Mapping) for r in data)


def _as_frame(data: Any) -> pd.DataFrame:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, Mapping):
        return _frame_from_columns(data)
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        return _frame_from_records(data)
    raise SignatureError(
        f"input must be a list of records or a dict of columns, not {type(data).__name__}"
    )


def _frame_from_columns(data: Mapping[str, Any]) -> pd.DataFrame:
    import pandas as pd

    lengths = set()
    for name, values in data.items():
        if not isinstance(values, list | tuple):
            raise SignatureError(
                f"column {name!r} must be a list of values, not {type(values).__name__}",
                field=str(name),
            )
        lengths.add(len(values))
    if len(lengths) > 1:
        raise SignatureError(
            f"columns have different lengths ({sorted(lengths)}); every column needs one "
            "value per row"
        )
    return pd.DataFrame({str(k): pd.Series(list(v), dtype=object) for k, v in data.items()})


def _frame_from_records(records: Sequence[Any]) -> pd.DataFrame:
    import pandas as pd

    if not records:
        raise SignatureError("input has no rows; send at least one record")
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise SignatureError(
                f"row {i} must be an object of column values, not {type(record).__name__}"
            )
    return pd.DataFrame.from_records(list(records)).astype(object)


def _convert(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    converter = _CONVERTERS[spec.type]
    return converter(column, spec)


def _numeric(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_bool_dtype(column.dtype) or column.map(_is_bool).any():
        _reject(column, column.map(_is_bool), spec)
    if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
        bad = ~column.map(_is_number_or_null)
        if bad.any():
            _reject(column, bad, spec)
    try:
        values = pd.to_numeric(column, errors="coerce")
    except OverflowError:  # an integer past the float range
        _reject(
            column, column.map(records_fast.too_large_for_float), spec, records_fast.FLOAT_RANGE
        )
    if spec.type == "integer":
        fractional = values.notna() & (values % 1 != 0)
        if fractional.any():
            _reject(column, fractional, spec)
        outside = _outside_int64(column, values)
        if outside.any():
            _reject(column, outside, spec, records_fast.INT64_RANGE)
        if not values.isna().any():
            return values.astype("int64")
    return values.astype("float64")


def _outside_int64(column: pd.Series, values: pd.Series) -> pd.Series:
    """Where ``values`` (``column`` as numbers) leave the int64 range; the original
    Python integers decide, as their float or unsigned forms round or wrap."""
    import pandas as pd

    if column.dtype == object:
        return column.map(lambda v: not _is_null(v) and not records_fast.in_int64(v))
    if values.dtype.kind == "u":
        return values > records_fast.INT64_MAX
    if values.dtype.kind == "f":
        return values.abs() >= 2.0**63
    return pd.Series(False, index=values.index, dtype=bool)


def _boolean(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    bad = ~column.map(lambda v: _is_bool(v) or _is_null(v))
    if bad.any():
        _reject(column, bad, spec)
    return column.astype("boolean") if column.map(_is_null).any() else column.astype(bool)


def _string(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    bad = ~column.map(lambda v: isinstance(v, str) or _is_null(v))
    if bad.any():
        _reject(column, bad, spec)
    return column.astype(object)


def _category(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    # The training categories fix the codes, as tree models read categories by code;
    # a value not seen in training becomes missing, as it would have been then.
    import pandas as pd

    values = _string(column, spec)
    if spec.categories is None:
        return values.astype("category")
    known = list(spec.categories)
    return values.where(values.isin(known)).astype(pd.CategoricalDtype(known))


def _datetime(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    import pandas as pd

    converted = pd.to_datetime(column, errors="coerce", utc=False, format="mixed")
    bad = converted.isna() & ~column.map(_is_null)
    if bad.any():
        _reject(column, bad, spec)
    return converted


_CONVERTERS = {
    "integer": _numeric,
    "float": _numeric,
    "boolean": _boolean,
    "string": _string,
    "category": _category,
    "datetime": _datetime,
}


def _reject(column: pd.Series, bad: pd.Series, spec: ColumnSpec, reason: str = "") -> NoReturn:
    position = int(bad.to_numpy().nonzero()[0][0])
    value = column.iloc[position]
    if hasattr(value, "item"):  # a numpy scalar reads as the Python number it holds
        value = value.item()
    raise SignatureError(
        f"column {spec.name!r} expects {spec.type} values but row {position} has "
        f"{value!r} ({type(value).__name__}){reason}",
        field=spec.name,
    )


def _is_bool(value: Any) -> bool:
    import numpy as np

    return isinstance(value, bool | np.bool_)


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _is_number_or_null(value: Any) -> bool:
    import numbers

    return _is_null(value) or (isinstance(value, numbers.Real) and not _is_bool(value))
