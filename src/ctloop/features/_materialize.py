"""Materialization: the latest row per entity key of a feature view's source, within a
range of event times, written to the workspace's online store.

Each view is read by one DuckDB query (the latest row per key wins by timestamp, then
created time), in key order, and streamed as Arrow record batches into the online store
inside one all-or-nothing write; only then (the store has its rows on disk) is the
materialization recorded, so its ``end`` becomes the watermark. A failure (or ``kill -9``) leaves the watermark where it
was, and running the same range again writes nothing new (only newer values replace
stored ones).

Memory stays bounded: DuckDB works within :data:`MEMORY_LIMIT`, spilling its sort to a
temporary folder, and Python holds a few batches of :data:`FETCH` rows at a time: a thread
reads the next ones from DuckDB (:data:`AHEAD` at most) while the store writes the one
before (DuckDB and the sqlite3 module both let go of the interpreter lock as they work).
"""

from __future__ import annotations

import gc
import queue
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ctloop.errors import FeatureError
from ctloop.features._definitions import FeatureView
from ctloop.features._sources import check_source, source_relation
from ctloop.features._stored import Workspace, stored_views

if TYPE_CHECKING:
    import duckdb

__all__ = ["latest_rows_query", "materialize", "materialize_incremental"]

#: rows fetched from DuckDB at a time
FETCH = 50_000
#: a batch of rows as the online store is written it: keys, event and created times in
#: microseconds, payloads (JSON arrays)
Columns = tuple[list[str], list[int], list[int], list[str]]
#: the memory DuckDB may use to find and sort the latest rows before it spills to disk
MEMORY_LIMIT = "1GB"
#: batches read ahead of the one being written
AHEAD = 2

T = TypeVar("T")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise FeatureError(
            f"{what} is {value!r}, not a datetime; give one such as 2024-01-31T00:00"
        )
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def materialize(
    workspace: Workspace,
    views: Sequence[str | FeatureView] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    by: str = "",
) -> list[Any]:
    """Write the latest value per entity key of each view, among the rows whose
    timestamp is in ``[start, end]``, to ``workspace.online``; return the
    :class:`~ctloop.store._features.MaterializationRecord` of each view.

    ``views`` are names of applied views or views (default: every applied view);
    ``start`` ``None`` reads from the first row, ``end`` ``None`` up to now. Naive
    datetimes are taken as UTC.

    >>> import datetime as dt
    >>> from ctloop.store.workspace import Workspace
    >>> with Workspace.in_memory() as ws:
    ...     materialize(ws, [], end=dt.datetime(2024, 1, 1))
    []
    """
    end_at = _utc(end, "end") if end is not None else datetime.now(UTC)
    start_at = None if start is None else _utc(start, "start")
    if start_at is not None and start_at > end_at:
        raise FeatureError(
            f"start {start_at.isoformat()} is after end {end_at.isoformat()}; swap them"
        )
    return [
        _materialize_view(workspace, view, start_at, end_at, inclusive=True, by=by)
        for view in _views(workspace, views)
    ]


def materialize_incremental(
    workspace: Workspace,
    views: Sequence[str | FeatureView] | None = None,
    end: datetime | None = None,
    *,
    by: str = "",
) -> list[Any]:
    """Materialize each view from its watermark (exclusive) to ``end`` (default: now).

    A view never materialized starts at ``end - ttl`` (rows older would have expired),
    or at its first row when it has no ttl, as Feast does.
    """
    end_at = _utc(end, "end") if end is not None else datetime.now(UTC)
    records = []
    for view in _views(workspace, views):
        watermark = workspace.features.watermark(view.name)
        if watermark is None:
            start, inclusive = (None if view.ttl is None else end_at - view.ttl), True
        else:
            start, inclusive = watermark, False
        records.append(_materialize_view(workspace, view, start, end_at, inclusive, by=by))
    return records


def _views(workspace: Workspace, views: Sequence[str | FeatureView] | None) -> list[FeatureView]:
    if views is None:
        return stored_views(workspace)
    names = [v for v in views if isinstance(v, str)]
    stored = {v.name: v for v in stored_views(workspace, names)} if names else {}
    return [stored[v] if isinstance(v, str) else v for v in views]


def _materialize_view(
    workspace: Workspace,
    view: FeatureView,
    start: datetime | None,
    end: datetime,
    inclusive: bool,
    *,
    by: str,
) -> Any:
    import duckdb

    with tempfile.TemporaryDirectory(prefix="ctloop-materialize-") as spill:
        con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": spill})
        collecting = gc.isenabled()
        try:
            con.execute("SET TimeZone = 'UTC'")
            types = check_source(view, con)
            # millions of short-lived objects: the cyclic collector finds nothing among them
            gc.disable()
            with _ReadAhead(_latest_rows(con, view, start, end, inclusive, types)) as batches:
                counted = _Counted(batches)
                written = workspace.online.write_columns(view.name, counted)
        finally:
            if collecting:
                gc.enable()
            con.close()
    return workspace.features.record_materialization(
        view.name, start=start, end=end, rows_read=counted.rows, rows_written=written, by=by
    )


class _ReadAhead(Generic[T]):
    """The items of an iterator, made in a thread up to :data:`AHEAD` ahead of the one
    being used; leaving the block stops and joins the thread (also on a failure), so the
    iterator's resources can be released after it."""

    _DONE: Any = object()

    def __init__(self, items: Iterator[T]) -> None:
        self._items = items
        self._queue: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._make, name="ctloop-read-ahead", daemon=True)

    def __enter__(self) -> Iterator[T]:
        self._thread.start()
        return self._take()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _put(self, item: tuple[bool, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _make(self) -> None:
        try:
            for item in self._items:
                if not self._put((True, item)):
                    return
            self._put((True, self._DONE))
        except BaseException as exc:  # handed to the reader, raised there
            self._put((False, exc))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()

    def _take(self) -> Iterator[T]:
        while True:
            ok, item = self._queue.get()
            if not ok:
                raise item
            if item is self._DONE:
                return
            yield item


class _Counted:
    """An iterator of batches of columns that counts the rows it yields."""

    def __init__(self, batches: Iterable[tuple[int, Columns]]) -> None:
        self._batches, self.rows = batches, 0

    def __iter__(self) -> Iterator[Columns]:
        for size, columns in self._batches:
            self.rows += size
            yield columns


def latest_rows_query(
    view: FeatureView,
    start: datetime | None,
    inclusive: bool,
    types: Mapping[str, str] | None = None,
) -> str:
    """The DuckDB query of ``view``'s rows with timestamp in the range (``$end`` and,
    unless ``start`` is ``None``, ``$start`` bound), sorted by key and, within a key, newest
    first (timestamp, then created time): key text, event and created times in
    microseconds, the features as a JSON array, and a hash of the key. The first row of
    each key is its latest; :func:`_latest_rows` keeps only those. ``types``: the source's
    DuckDB column types, when known."""
    keys = [_ident(k) for k in view.join_keys]
    ts = f"CAST({_ident(view.timestamp)} AS TIMESTAMP)"
    created = f"CAST({_ident(view.created)} AS TIMESTAMP)" if view.created else "NULL::TIMESTAMP"
    where = [f"{ts} <= $end", *(f"{k} IS NOT NULL" for k in keys)]
    if start is not None:
        where.append(f"{ts} {'>=' if inclusive else '>'} $start")
    fields = ", ".join(
        f"CAST({_ident(f.name)} AS TIMESTAMP) AS {_ident(f.name)}"
        if f.dtype == "timestamp"
        else _ident(f.name)
        for f in view.fields
    )
    key = keys[0] if len(keys) == 1 else f"concat_ws(chr(31), {', '.join(keys)})"
    rows = (
        f"SELECT CAST({key} AS VARCHAR) AS __key, epoch_us({ts}) AS __event_us, "
        f"coalesce(epoch_us({created}), 0) AS __created_us, {fields} "
        f"FROM {source_relation(view.source)} WHERE {' AND '.join(where)}"
    )
    payload = ", ".join(_ident(f.name) for f in view.fields)
    # to_json of a list writes the same text as json_array, three times as fast, but a
    # list holds one type: features of several types would be converted to a common one
    kinds = {
        "TIMESTAMP" if f.dtype == "timestamp" else (types or {}).get(f.name) for f in view.fields
    }
    as_json = (
        f"to_json([{payload}])"
        if len(kinds) == 1 and None not in kinds
        else f"json_array({payload})"
    )
    # One sort finds each key's latest row (its first) and puts the keys in the order the
    # online store's index grows in; the JSON is made as the sorted rows stream out (the
    # projection keeps their order: preserve_insertion_order). A window per key and a
    # second sort cost twice as much.
    # the hash lets Python find where a key starts by comparing integers
    return (
        f"SELECT __key, __event_us, __created_us, CAST({as_json} AS VARCHAR), "
        f"hash(__key) FROM ({rows} ORDER BY __key, __event_us DESC, __created_us DESC)"
    )


def _latest_rows(
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    start: datetime | None,
    end: datetime,
    inclusive: bool,
    types: Mapping[str, str] | None = None,
) -> Iterator[tuple[int, Columns]]:
    """Batches of the latest row of each key, in key order, as columns (keys, event and
    created times, payloads), each with the number of keys it holds."""
    params: dict[str, Any] = {"end": end.replace(tzinfo=None)}
    if start is not None:
        params["start"] = start.replace(tzinfo=None)
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")
    relation = con.sql(latest_rows_query(view, start, inclusive, types), params=params)
    # to_arrow_reader in recent DuckDB, fetch_arrow_reader (since deprecated) in older ones
    to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    previous: tuple[int, str] | None = None  # the hash and key of the batch before's last row
    for batch in to_reader(FETCH):
        if batch.num_rows == 0:
            continue
        starts = _key_starts(batch.column(0), batch.column(4), previous)
        latest = batch if starts.all() else batch.filter(starts)
        last = batch.num_rows - 1
        previous = (batch.column(4)[last].as_py(), batch.column(0)[last].as_py())
        if latest.num_rows == 0:
            continue
        key, event, created, payload, _ = latest.columns
        columns = (
            key.to_pylist(),
            event.to_numpy().tolist(),
            created.to_numpy().tolist(),
            payload.to_pylist(),
        )
        yield latest.num_rows, columns


def _key_starts(keys: Any, hashes: Any, previous: tuple[int, str] | None) -> Any:
    """A numpy mask of the rows (sorted by key) whose key differs from the row's before
    (``previous``: the hash and key before the first row). Neighbours are compared by
    hash, and by key only where their hashes are equal, so a collision drops nothing."""
    import numpy as np
    import pyarrow.compute as pc

    h = hashes.to_numpy()
    starts = np.empty(len(h), dtype=bool)
    starts[1:] = h[1:] != h[:-1]
    starts[0] = previous is None or previous[0] != int(h[0])
    same = np.flatnonzero(~starts[1:]) + 1  # equal hashes: same key, or a collision
    if len(same):
        differ = pc.not_equal(pc.take(keys, same), pc.take(keys, same - 1))
        starts[same] = differ.to_numpy(zero_copy_only=False)
    if not starts[0] and previous is not None:
        starts[0] = keys[0].as_py() != previous[1]
    return starts
