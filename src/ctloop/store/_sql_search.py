"""The SQL of :meth:`SqlMetadataStore.search_runs <ctloop.store._sql.SqlMetadataStore.search_runs>`:
the page's ids and the total in one statement, on SQLite and PostgreSQL.

A metric is a join with its row of ``latest_metrics`` (one per run and key); a run
parameter is read from the run's ``parameters`` JSON as a number and as text
(:func:`~ctloop.store.metadata.param_number`, :func:`~ctloop.store.metadata.param_text`):
on SQLite by the functions :func:`register_sqlite_functions` adds to each connection,
on PostgreSQL by ``jsonb`` operators and a check that a string reads as a number
(decimal or exponent notation, ``inf``, ``nan``); a duration is ``ended_at -
started_at`` in seconds. The filters and conditions, the order (runs without a value
last, newest first) and the cut by ``LIMIT``/``OFFSET`` are all the database's.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Double,
    Integer,
    Select,
    Text,
    and_,
    case,
    cast,
    exists,
    extract,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB

from ctloop.store._schema import LATEST_METRICS, RUNS
from ctloop.store.metadata import (
    SEARCH_OPS,
    check_search_op,
    check_search_page,
    check_search_sort,
    param_number,
    param_text,
)

__all__ = ["metric_sort_page", "register_sqlite_functions", "search_page_query"]

#: a string PostgreSQL's float8 reads as Python's float() does (but for digit underscores)
_NUMBER = r"^\s*[-+]?((\d+\.?\d*|\.\d+)(e[-+]?\d+)?|inf|infinity|nan)\s*$"


@lru_cache(maxsize=8192)
def _parameters(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    found = json.loads(text)
    return found if isinstance(found, dict) else {}


def _sqlite_param_number(parameters: str | None, key: str) -> float | None:
    return param_number(_parameters(parameters).get(key))


def _sqlite_param_text(parameters: str | None, key: str) -> str | None:
    return param_text(_parameters(parameters).get(key))


def register_sqlite_functions(connection: sqlite3.Connection) -> None:
    """Add ``ctloop_param_number(parameters, key)`` and ``ctloop_param_text(parameters,
    key)`` to a SQLite connection: a run parameter as a number and as text."""
    connection.create_function("ctloop_param_number", 2, _sqlite_param_number, deterministic=True)
    connection.create_function("ctloop_param_text", 2, _sqlite_param_text, deterministic=True)


def _param(dialect: str, key: str) -> tuple[Any, Any]:
    """(as a number, as text) of the run's parameter ``key``, in SQL."""
    if dialect == "sqlite":
        return (
            func.ctloop_param_number(RUNS.c.parameters, key, type_=Double),
            func.ctloop_param_text(RUNS.c.parameters, key, type_=Text),
        )
    value = cast(RUNS.c.parameters, JSONB)[key]
    kind, raw = func.jsonb_typeof(value), value.astext
    number = case(
        (kind == "number", cast(raw, Double)),
        (and_(kind == "string", raw.regexp_match(_NUMBER, flags="i")), cast(raw, Double)),
        else_=None,
    )
    text = case(
        (kind == "string", raw),
        (kind == "null", None),
        else_=cast(value, Text),
    )
    return number, text


def _param_condition(dialect: str, key: str, op: str, wanted: str) -> Any:
    """SQL for :func:`~ctloop.store.metadata.param_holds`."""
    check_search_op(op)
    number, text = _param(dialect, key)
    compare = SEARCH_OPS[op]
    as_text = compare(text, wanted) if op in ("=", "==", "!=") else literal(False)
    wanted_number = param_number(wanted)
    if wanted_number is None:
        return as_text
    return case((number.is_not(None), compare(number, wanted_number)), else_=as_text)


def _duration(dialect: str) -> Any:
    """Seconds from start to end (``NULL`` while running), exact to the microsecond:
    SQLite stores times as ``YYYY-MM-DD HH:MM:SS.ffffff`` text."""
    end, start = RUNS.c.ended_at, RUNS.c.started_at
    if dialect != "sqlite":
        return cast(extract("epoch", end - start), Double)

    def seconds(column: Any) -> Any:
        return cast(func.strftime("%s", column), Integer)

    def micros(column: Any) -> Any:
        return cast(func.substr(column, 21, 6), Integer)

    return (seconds(end) - seconds(start)) + (micros(end) - micros(start)) / 1_000_000.0


def search_page_query(
    dialect: str,
    *,
    filters: dict[str, str | None],
    where: Sequence[tuple[str, str, float]],
    param_where: Sequence[tuple[str, str, str]],
    sort: tuple[str, str, bool],
    offset: int,
    limit: int | None,
    started_after: datetime | None = None,
) -> tuple[Select[Any], Any]:
    """(the page's ids with the total, the matching runs as a subquery)."""
    check_search_page(offset, limit)
    kind, key, descending = sort
    check_search_sort(kind, key)
    joined: Any = RUNS
    text: Any = None
    held_nan: Any = None  # a run whose latest value is NaN (NULL): after the numbers
    if kind == "metric":
        sorted_by = LATEST_METRICS.alias("sorted_by")
        joined = joined.outerjoin(
            sorted_by, and_(sorted_by.c.run_id == RUNS.c.id, sorted_by.c.key == key)
        )
        value: Any = sorted_by.c.value
        held_nan = and_(sorted_by.c.run_id.is_not(None), value.is_(None))
    elif kind == "param":  # numbers when every run's value is one, else text
        number, text = _param(dialect, key)
        all_numbers = func.count(number).over() == func.count(text).over()
        value = case((all_numbers, number), else_=None)
        text = case((all_numbers, None), else_=text)
    elif key == "duration":
        value = _duration(dialect)
    else:
        value = RUNS.c[key]
    conditions: list[Any] = [RUNS.c[name] == wanted for name, wanted in filters.items() if wanted]
    if started_after is not None:
        conditions.append(RUNS.c.started_at > started_after)
    for n, (metric, op, number_) in enumerate(where):
        check_search_op(op)
        held = LATEST_METRICS.alias(f"where_{n}")
        joined = joined.join(held, and_(held.c.run_id == RUNS.c.id, held.c.key == metric))
        conditions.append(SEARCH_OPS[op](held.c.value, number_))
    conditions += [_param_condition(dialect, *condition) for condition in param_where]
    columns = [RUNS.c.id, RUNS.c.started_at, value.label("sort_value")]
    if text is not None:
        columns.append(text.label("sort_text"))
    if held_nan is not None:
        columns.append(case((held_nan, 1), else_=2).label("without_value"))
    found = select(*columns).select_from(joined).where(*conditions).subquery("found")
    sort_values = [found.c.sort_value] + ([found.c.sort_text] if text is not None else [])
    ties: list[Any] = [*sort_values, found.c.started_at, found.c.id]
    first: list[Any] = []
    last: list[Any] = []
    if kind != "column" or key == "duration":  # runs without a value last, newest first
        present = ~and_(*(v.is_(None) for v in sort_values))
        absent = found.c.without_value if held_nan is not None else 1
        first = [case((present, 0), else_=absent)]
        ties = [*sort_values, *(case((present, c), else_=None) for c in ties[-2:])]
        last = [found.c.started_at.desc(), found.c.id.desc()]
    query = select(found.c.id, func.count().over().label("total")).order_by(
        *first, *(c.desc() if descending else c.asc() for c in ties), *last
    )
    query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return query, found


def _run_filters(filters: dict[str, str | None], started_after: datetime | None) -> list[Any]:
    conditions: list[Any] = [RUNS.c[name] == wanted for name, wanted in filters.items() if wanted]
    if started_after is not None:
        conditions.append(RUNS.c.started_at > started_after)
    return conditions


def metric_sort_page(
    conn: Connection,
    *,
    filters: dict[str, str | None],
    started_after: datetime | None,
    key: str,
    descending: bool,
    offset: int,
    limit: int | None,
) -> tuple[list[str], int]:
    """The page's run ids and the total of a search sorted by metric ``key`` with no
    conditions, in the order :func:`search_page_query` gives: the runs with the metric by
    (value, started_at, id) in the sort's direction, then the runs without it, newest
    first (those whose latest value is NaN before those that never logged it). The runs
    with it are read in value order from ``latest_metrics (key, value, run_id)`` up to the
    page's end, only ties sorted (a sort of every run before), the counts in the same
    statement; the runs without it are read only when the page reaches them."""
    check_search_page(offset, limit)
    check_search_sort("metric", key)
    conditions = _run_filters(filters, started_after)
    present = and_(LATEST_METRICS.c.key == key, LATEST_METRICS.c.value.is_not(None))
    joined = LATEST_METRICS.join(RUNS, RUNS.c.id == LATEST_METRICS.c.run_id)
    counted = select(func.count()).select_from(joined if conditions else LATEST_METRICS)
    with_it_count = counted.where(present, *conditions).scalar_subquery()
    everyone_count = select(func.count()).select_from(RUNS).where(*conditions).scalar_subquery()
    order = [LATEST_METRICS.c.value, RUNS.c.started_at, RUNS.c.id]
    page = (
        select(
            LATEST_METRICS.c.run_id,
            with_it_count.label("with_it"),
            everyone_count.label("everyone"),
        )
        .select_from(joined)
        .where(present, *conditions)
        .order_by(*(c.desc() if descending else c.asc() for c in order))
        .offset(offset)
    )
    rows = conn.execute(page if limit is None else page.limit(limit)).all()
    ids = [row.run_id for row in rows]
    if rows:  # the counts came with the page
        with_it, everyone = int(rows[0].with_it), int(rows[0].everyone)
    else:
        counts = conn.execute(select(with_it_count, everyone_count)).one()
        with_it, everyone = int(counts[0]), int(counts[1])
    wanted = None if limit is None else limit - len(ids)
    if (wanted is None or wanted > 0) and everyone > with_it:
        has_it = exists().where(present, LATEST_METRICS.c.run_id == RUNS.c.id)
        nan = and_(LATEST_METRICS.c.key == key, LATEST_METRICS.c.value.is_(None))
        has_nan = exists().where(nan, LATEST_METRICS.c.run_id == RUNS.c.id)
        rest = (
            select(RUNS.c.id)
            .where(~has_it, *conditions)
            .order_by(case((has_nan, 0), else_=1), RUNS.c.started_at.desc(), RUNS.c.id.desc())
            .offset(max(0, offset - with_it))
        )
        ids += [row.id for row in conn.execute(rest if wanted is None else rest.limit(wanted))]
    return ids, everyone
