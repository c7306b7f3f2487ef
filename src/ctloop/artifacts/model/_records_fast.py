"""Records (a list of dicts, as JSON clients send them) to a typed DataFrame, fast.

The general path builds a DataFrame of Python objects and converts it column by column
with pandas; for the few rows of an online request that costs milliseconds. This path
checks and converts each value in plain Python, then builds one array per column, with
the same rules and the same messages.

>>> from ctloop.artifacts.model import ColumnSpec
>>> frame = records_to_frame([{"a": 1, "b": "x"}], (ColumnSpec("a", "integer"),
...                          ColumnSpec("b", "category", ("x", "y"))), allow_extra=False)
>>> frame.dtypes.astype(str).tolist(), frame["b"].cat.codes.tolist()
(['int64', 'category'], [0])
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctloop.errors import SignatureError

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.artifacts.model._signature import ColumnSpec

__all__ = [
    "FLOAT_RANGE",
    "INT64_MAX",
    "INT64_MIN",
    "INT64_RANGE",
    "in_int64",
    "records_to_frame",
    "too_large_for_float",
]

_FAST_TYPES = {"integer", "float", "boolean", "string", "category"}


def supports(specs: Sequence[ColumnSpec]) -> bool:
    """Whether every column has a type this path converts (datetimes take the other)."""
    return all(spec.type in _FAST_TYPES for spec in specs)


def records_to_frame(
    records: Sequence[Mapping[str, Any]], specs: Sequence[ColumnSpec], *, allow_extra: bool
) -> pd.DataFrame:
    """The records as a DataFrame of the specs' columns and types (see the module)."""
    import pandas as pd

    _check_keys(records, specs, allow_extra)
    columns = {spec.name: _column(records, spec) for spec in specs}
    return pd.DataFrame(columns)


def _check_keys(
    records: Sequence[Mapping[str, Any]], specs: Sequence[ColumnSpec], allow_extra: bool
) -> None:
    if not records:
        raise SignatureError("input has no rows; send at least one record")
    names = [spec.name for spec in specs]
    seen: dict[str, None] = {}
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise SignatureError(
                f"row {i} must be an object of column values, not {type(record).__name__}"
            )
        seen.update(dict.fromkeys(record))
    missing = [n for n in names if n not in seen]
    if missing:
        raise SignatureError(
            f"input is missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)}; the model reads {', '.join(names)}",
            field=missing[0],
        )
    extra = [str(k) for k in seen if k not in set(names)]
    if extra and not allow_extra:
        raise SignatureError(
            f"input has unexpected column{'s' if len(extra) > 1 else ''} "
            f"{', '.join(repr(e) for e in extra)}; the model reads only {', '.join(names)}",
            field=extra[0],
        )


def _column(records: Sequence[Mapping[str, Any]], spec: ColumnSpec) -> Any:
    values = [record.get(spec.name) for record in records]
    return _CONVERT[spec.type](values, spec)


def _null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def _reject(spec: ColumnSpec, row: int, value: Any, reason: str = "") -> SignatureError:
    return SignatureError(
        f"column {spec.name!r} expects {spec.type} values but row {row} has {value!r} "
        f"({type(value).__name__}){reason}",
        field=spec.name,
    )


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The range of an integer column (int64); a number outside it is refused, not wrapped."""

INT64_RANGE = f", outside the 64-bit integer range {INT64_MIN} to {INT64_MAX}"
"""What a refusal of a number outside :data:`INT64_MIN` .. :data:`INT64_MAX` adds."""

FLOAT_RANGE = ", too large for a 64-bit float"
"""What a refusal of a number past the float range adds."""


def in_int64(value: Any) -> bool:
    """Whether the whole number ``value`` fits an integer column. A float must lie
    strictly inside the range: orjson reads an integer past 64 bits as a float, and
    one just below the range rounds to -2**63."""
    if isinstance(value, float):
        return -(2.0**63) < value < 2.0**63
    return bool(INT64_MIN <= value <= INT64_MAX)


def too_large_for_float(value: Any) -> bool:
    """Whether the number ``value`` has no float (an integer past about 1.8e308)."""
    try:
        float(value)
    except OverflowError:
        return True
    return False


def _numbers(values: list[Any], spec: ColumnSpec) -> Any:
    import numpy as np

    integer = spec.type == "integer"
    has_null = False
    for i, value in enumerate(values):
        if _null(value):
            has_null = True
        elif _bool(value) or not isinstance(value, numbers.Real):
            raise _reject(spec, i, value)
        elif integer and not (isinstance(value, int) and INT64_MIN <= value <= INT64_MAX):
            if value % 1 != 0:
                raise _reject(spec, i, value)
            if not in_int64(value):
                raise _reject(spec, i, value, INT64_RANGE)
    if integer and not has_null:
        return np.array(values, dtype="int64")
    try:
        return np.array([np.nan if _null(v) else v for v in values], dtype="float64")
    except OverflowError:
        row = next(i for i, v in enumerate(values) if too_large_for_float(v))
        raise _reject(spec, row, values[row], FLOAT_RANGE) from None


def _booleans(values: list[Any], spec: ColumnSpec) -> Any:
    import pandas as pd

    for i, value in enumerate(values):
        if not (_bool(value) or _null(value)):
            raise _reject(spec, i, value)
    if any(_null(v) for v in values):
        return pd.array([None if _null(v) else bool(v) for v in values], dtype="boolean")
    return [bool(v) for v in values]


def _strings(values: list[Any], spec: ColumnSpec) -> Any:
    import numpy as np

    for i, value in enumerate(values):
        if not (isinstance(value, str) or _null(value)):
            raise _reject(spec, i, value)
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _categories(values: list[Any], spec: ColumnSpec) -> Any:
    import pandas as pd

    _strings(values, spec)
    if spec.categories is None:
        return pd.Categorical([None if _null(v) else v for v in values])
    known, dtype = _category_codes(spec.categories)
    codes = [known.get(v, -1) if isinstance(v, str) else -1 for v in values]
    return pd.Categorical.from_codes(codes, dtype=dtype)


@functools.lru_cache(maxsize=512)
def _category_codes(categories: tuple[str, ...]) -> tuple[dict[str, int], Any]:
    """Code of each category, and the dtype: built once per signature column, because
    pandas validates the categories each time a dtype is made (most of a row's cost)."""
    import pandas as pd

    return {c: i for i, c in enumerate(categories)}, pd.CategoricalDtype(list(categories))


_CONVERT = {
    "integer": _numbers,
    "float": _numbers,
    "boolean": _booleans,
    "string": _strings,
    "category": _categories,
}
