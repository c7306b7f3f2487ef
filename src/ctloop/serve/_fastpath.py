"""Validating small requests in plain Python, so that a batch of them becomes one
DataFrame instead of one per request (building a DataFrame costs more than predicting a
row with many models).

:func:`plain_records` accepts only input whose values already have their column's type
exactly; anything else (strings for numbers, datetimes, missing integers, a wrong column)
returns ``None`` and takes the checked path, ``Model.prepare``, which converts it or
raises the :class:`~ctloop.errors.SignatureError` naming the column.

>>> from ctloop.artifacts.model import ColumnSpec, Signature
>>> sig = Signature((ColumnSpec("x", "float"), ColumnSpec("c", "string")))
>>> plain_records(sig, {"x": [1, 2.5], "c": ["a", None]})
[{'x': 1, 'c': 'a'}, {'x': 2.5, 'c': None}]
>>> plain_records(sig, [{"x": "1", "c": "a"}]) is None
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.artifacts.model._signature import Signature

__all__ = ["plain_records"]


def _integer(v: Any) -> bool:
    return type(v) is int


def _float(v: Any) -> bool:
    return v is None or type(v) is float or type(v) is int


def _boolean(v: Any) -> bool:
    return type(v) is bool


def _text(v: Any) -> bool:
    return v is None or type(v) is str


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "integer": _integer,
    "float": _float,
    "boolean": _boolean,
    "string": _text,
    "category": _text,
}


def plain_records(signature: Signature, data: Any) -> list[dict[str, Any]] | None:
    """``data`` (records or columns) as records when every value has its column's type
    exactly and the columns are exactly the signature's; else ``None``."""
    checks = [(c.name, _CHECKS.get(c.type)) for c in signature.inputs]
    if any(check is None for _, check in checks):
        return None
    names = {name for name, _ in checks}
    records = _as_records(data, names)
    if records is None:
        return None
    for name, check in checks:
        for record in records:
            if not check(record[name]):  # type: ignore[misc]
                return None
    return records


def _as_records(data: Any, names: set[str]) -> list[dict[str, Any]] | None:
    if isinstance(data, list):
        if not data or not all(type(r) is dict and r.keys() == names for r in data):
            return None
        return data
    if isinstance(data, dict) and data.keys() == names:
        columns = list(data.values())
        if not all(type(c) is list for c in columns) or len({len(c) for c in columns}) != 1:
            return None
        keys = list(data)
        rows = [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]
        return rows or None
    return None
