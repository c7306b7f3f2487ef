"""Cursor-based pages: an opaque ``cursor`` (the sort key of the last item of the
previous page, base64url JSON) and ``limit`` (1 to 1000) in; ``items`` and
``next_cursor`` (``null`` on the last page) out.

Paging is done here, over the stores' interfaces, not in SQL: the stores answer sorted
lists (runs newest first in pages of their own), so the server only remembers where a
page ended. Runs are read from the store a chunk at a time (``before`` a start time), so
a page of runs costs one or a few indexed queries however many runs there are.

>>> cursor = encode_cursor(["2026-01-01T00:00:00+00:00", "r1"])
>>> decode_cursor(cursor)
['2026-01-01T00:00:00+00:00', 'r1']
>>> page_of([1, 2, 3, 4], key=lambda n: [n], cursor=encode_cursor([1]), limit=2)["items"]
[2, 3]
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ctloop.server._errors import BadRequestError
from ctloop.store.metadata import MetadataStore
from ctloop.store.records import RunRecord

__all__ = ["MAX_LIMIT", "decode_cursor", "encode_cursor", "page_of", "page_of_runs"]

T = TypeVar("T")
#: the most items one page may hold
MAX_LIMIT = 1000
_TICK = timedelta(microseconds=1)


def encode_cursor(key: list[Any]) -> str:
    """The opaque cursor for sort key ``key``."""
    raw = json.dumps(key, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The sort key in ``cursor``; a cursor this server did not make is a 400."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        key = None
    if not isinstance(key, list) or not key:
        raise BadRequestError(
            f"cursor {cursor[:40]!r} is not one this server made; pass the next_cursor of "
            "the previous page, or no cursor for the first page",
            field="cursor",
        )
    return key


def page_of(
    items: Sequence[T],
    *,
    key: Callable[[T], list[Any]],
    cursor: str | None,
    limit: int,
    render: Callable[[T], Any] = lambda item: item,
) -> dict[str, Any]:
    """The page of ``items`` (sorted ascending by ``key``) after ``cursor``."""
    after = None if cursor is None else decode_cursor(cursor)
    rest = list(items) if after is None else [i for i in items if _after(key(i), after)]
    return _page(rest[: limit + 1], key, limit, render)


def _after(key: list[Any], after: list[Any]) -> bool:
    try:
        return key > after
    except TypeError:
        raise BadRequestError(
            "the cursor belongs to another list; pass the next_cursor of this list's previous page",
            field="cursor",
        ) from None


def _page(
    found: list[T], key: Callable[[T], list[Any]], limit: int, render: Callable[[T], Any]
) -> dict[str, Any]:
    more = len(found) > limit
    shown = found[:limit]
    return {
        "items": [render(i) for i in shown],
        "next_cursor": encode_cursor(key(shown[-1])) if more and shown else None,
    }


def run_key(run: RunRecord) -> list[Any]:
    """The sort key of a run in a newest-first list: its start time and id."""
    return [run.started_at.isoformat(), run.id]


def page_of_runs(
    store: MetadataStore,
    *,
    cursor: str | None,
    limit: int,
    keep: Callable[[RunRecord], bool],
    pipeline: str | None = None,
    status: str | None = None,
    render: Callable[[RunRecord], Any] = lambda run: run,
) -> dict[str, Any]:
    """A page of runs, newest first, with the store's filters and ``keep``."""
    after = None if cursor is None else _run_cursor(cursor)
    found: list[RunRecord] = []
    # after a cursor the store's answer starts with the cursor's own run: one row more
    # keeps a page to one query
    chunk = limit + 1 if after is None else limit + 2
    for run in _runs_after(store, after, pipeline, status, chunk=chunk):
        if keep(run):
            found.append(run)
            if len(found) > limit:
                break
    return _page(found, run_key, limit, render)


def _run_cursor(cursor: str) -> tuple[datetime, str]:
    key = decode_cursor(cursor)
    try:
        return datetime.fromisoformat(key[0]), str(key[1])
    except (IndexError, TypeError, ValueError):
        raise BadRequestError(
            "the cursor is not one of the runs list; pass the next_cursor of its previous page",
            field="cursor",
        ) from None


def _runs_after(
    store: MetadataStore,
    after: tuple[datetime, str] | None,
    pipeline: str | None,
    status: str | None,
    *,
    chunk: int,
) -> Iterator[RunRecord]:
    """Runs newest first (start time, then id, descending) strictly after ``after``,
    read ``chunk`` at a time; runs that share a start time are never skipped."""
    while True:
        before = None if after is None else after[0] + _TICK
        rows = store.list_runs(pipeline=pipeline, status=status, limit=chunk, before=before)
        fresh = [r for r in rows if after is None or (r.started_at, r.id) < after]
        if not fresh and len(rows) == chunk:
            chunk *= 2  # a whole chunk shares the cursor's start time: read further
            continue
        yield from fresh
        if len(rows) < chunk or not fresh:
            return
        after = (fresh[-1].started_at, fresh[-1].id)
