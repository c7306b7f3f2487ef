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
    bound = _bound(signature)
    if bound is None:
        return None
    checks, names = bound
    records = _as_records(data, names)
    if records is None:
        return None
    for record in records:
        for name, check in checks:
            if not check(record[name]):
                return None
    return records


_Bound = tuple[tuple[tuple[str, Callable[[Any], bool]], ...], frozenset[str]]
_BOUND: dict[int, tuple[Signature, _Bound | None]] = {}
"""Each signature's column checks and names, found once (by identity: a served
model's signature is one object; hashing it would walk every category)."""


def _bound(signature: Signature) -> _Bound | None:
    """The (name, check) of each input column and the set of names; ``None`` when a
    column's type has no plain check (a datetime)."""
    known = _BOUND.get(id(signature))
    if known is not None and known[0] is signature:
        return known[1]
    pairs = [(c.name, _CHECKS.get(c.type)) for c in signature.inputs]
    bound: _Bound | None = None
    if all(check is not None for _, check in pairs):
        checks = tuple((name, check) for name, check in pairs if check is not None)
        bound = (checks, frozenset(name for name, _ in checks))
    if len(_BOUND) >= 64:  # models come and go with promotions: keep the latest few
        _BOUND.clear()
    _BOUND[id(signature)] = (signature, bound)
    return bound


def _as_records(data: Any, names: frozenset[str]) -> list[dict[str, Any]] | None:
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
