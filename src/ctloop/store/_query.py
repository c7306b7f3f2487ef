"""The equality filters of a store's list methods, read one way by every backend.

A list method takes optional filters (``model=None``: any model); :func:`given` keeps
those that were passed, and the SQL stores add them to a query with
:func:`where_equal` while the in-memory ones keep the records :func:`matching` them, so
both read the same arguments the same way.

>>> from types import SimpleNamespace as Row
>>> filters = given(model="flights", state=None)
>>> filters
{'model': 'flights'}
>>> [r.id for r in matching([Row(id=1, model="flights"), Row(id=2, model="taxi")], filters)]
[1]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Select, Table

__all__ = ["given", "matching", "where_equal"]

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])


def given(**filters: Any) -> dict[str, Any]:
    """The filters that were passed: those whose value is not ``None``."""
    return {field: value for field, value in filters.items() if value is not None}


def where_equal(query: S, table: Table, filters: Mapping[str, Any]) -> S:
    """``query`` keeping the rows of ``table`` whose columns equal ``filters``."""
    for column, value in filters.items():
        query = query.where(table.c[column] == value)
    return query


def matching(records: Iterable[T], filters: Mapping[str, Any]) -> list[T]:
    """The records whose fields equal ``filters``, in their order."""
    return [r for r in records if all(getattr(r, f) == v for f, v in filters.items())]
