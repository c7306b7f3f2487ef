"""Fields of MLflow's requests that several routes read: keys, tag lists, view types and
pages (a page token is an offset into the answer).

>>> tag_map([{"key": "team", "value": "ml"}])
{'team': 'ml'}
>>> page_of(list(range(5)), {"max_results": 2, "page_token": "2"}, default=100)
([2, 3], {'next_page_token': '4'})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ctloop.server._mlflow._protocol import MlflowError, integer

__all__ = ["MAX_KEY", "check_key", "in_view", "page_of", "tag_map"]

MAX_KEY = 250


def check_key(item: dict[str, Any], what: str) -> str:
    key = item.get("key")
    if not isinstance(key, str) or not key:
        raise MlflowError.invalid(f"a {what} needs a non-empty 'key'; got {key!r}")
    if len(key) > MAX_KEY or key.startswith("/") or ".." in key.split("/"):
        raise MlflowError.invalid(f"{what} key {key[:80]!r} is not valid (at most {MAX_KEY} chars)")
    return key


def tag_map(items: Any) -> dict[str, str]:
    if not items:
        return {}
    if not isinstance(items, list):
        raise MlflowError.invalid("'tags' must be a list of {key, value} objects")
    return {check_key(t, "tag"): "" if t.get("value") is None else str(t["value"]) for t in items}


def in_view(deleted: bool, view: str) -> bool:
    view = view.upper()
    if view in ("2", "DELETED_ONLY"):
        return deleted
    if view in ("3", "ALL"):
        return True
    return not deleted


def page_of(
    items: Sequence[Any], data: dict[str, Any], *, default: int
) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` and the ``next_page_token`` of the next (an offset)."""
    size = integer(data, "max_results", default) or default
    if size < 1 or size > 50_000:
        raise MlflowError.invalid(f"max_results must be between 1 and 50000; got {size}")
    token = data.get("page_token") or "0"
    if not str(token).isdigit():
        raise MlflowError.invalid(f"page_token {token!r} is not one this server gave")
    start = int(token)
    page = list(items[start : start + size])
    more = start + size < len(items)
    return page, ({"next_page_token": str(start + size)} if more else {})
