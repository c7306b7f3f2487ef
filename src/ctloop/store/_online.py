"""The online store: the latest feature values of each entity key, for serving.

A feature view's rows are kept by entity key (the key columns' values joined by ``\\x1f``)
as an :class:`OnlineRow`: the event time and created time (microseconds since the epoch,
``0`` when the view has no created column) and the feature values as a JSON array. A row
replaces the stored one only when it is newer (event time, then created time), so writing
the same rows twice changes nothing, and the newest row of a key wins whatever the order
the rows come in.

Three stores hold the same contract: :class:`MemoryOnlineStore` (the test seam),
:class:`SqliteOnlineStore` (the default: a file in the project folder) and
:class:`~ctloop.store._online_redis.RedisOnlineStore` (for a team).

>>> store = MemoryOnlineStore()
>>> store.write("weather", [OnlineRow("EWR", 10, 0, "[5.0]"), OnlineRow("JFK", 10, 0, "[6.0]")])
2
>>> store.write("weather", [OnlineRow("EWR", 10, 0, "[5.0]")])
0
>>> store.read({"weather": ["EWR", "LGA"]})
{'weather': [OnlineValue(event_us=10, payload='[5.0]'), None]}
"""

from __future__ import annotations

import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from ctloop.errors import StoreError, StoreUnavailableError

__all__ = [
    "KEY_SEPARATOR",
    "Columns",
    "MemoryOnlineStore",
    "OnlineRow",
    "OnlineStore",
    "OnlineValue",
    "Row",
    "SqliteOnlineStore",
    "batch_rows",
    "check_row",
    "default_online_url",
    "entity_key",
    "open_online_store",
]

#: what joins the values of a composite entity key
KEY_SEPARATOR = "\x1f"
#: rows per statement or pipeline batch when writing
BATCH = 10_000
#: rows per SQLite INSERT: binding 2,000 parameters to one statement costs less than
#: running a one-row statement 500 times (SQLite allows 32,766 parameters)
ROWS_PER_INSERT = 500
#: the page cache (KiB) of a SQLite write, so a bulk load spills fewer dirty pages early
LOAD_CACHE_KIB = 65_536
#: the page size (bytes) of a new SQLite online store
PAGE_SIZE = 16_384


def entity_key(values: Sequence[object]) -> str:
    """The stored key of an entity: its key columns' values as text, joined.

    Numbers and their text are the same key (``42`` and ``"42"``), so a key typed on the
    command line finds a row materialized from an integer column.

    >>> entity_key(["EWR", 2024, True])
    'EWR\\x1f2024\\x1ftrue'
    """
    return KEY_SEPARATOR.join(
        ("true" if v else "false") if isinstance(v, bool) else str(v) for v in values
    )


class OnlineRow(NamedTuple):
    """One entity's latest feature values, as written."""

    key: str
    event_us: int
    created_us: int
    payload: str


#: what :meth:`OnlineStore.write` takes: an :class:`OnlineRow` or the same plain tuple
Row = tuple[str, int, int, str]
#: what :meth:`OnlineStore.write_columns` takes: a batch of rows as columns (keys, event
#: and created times, payloads), each as long as the others
Columns = tuple[Sequence[str], Sequence[int], Sequence[int], Sequence[str]]


class OnlineValue(NamedTuple):
    """One entity's stored feature values, as read (``payload`` is a JSON array)."""

    event_us: int
    payload: str


class OnlineStore(ABC):
    """The latest feature values per feature view and entity key.

    Errors: an unreachable backend raises :class:`~ctloop.errors.StoreUnavailableError`.
    Where :attr:`atomic` is true, :meth:`write` is all or nothing: when it raises, no row
    of the call is visible. Otherwise (Redis) it streams batch by batch, each batch whole,
    and a failed write may leave its first batches stored: writing the same rows again
    completes it, since only newer rows replace stored ones. Reading a view that was never
    written gives ``None`` for every key.
    """

    #: whether a write is all or nothing (else each of its batches is)
    atomic = True

    @abstractmethod
    def write(self, view: str, rows: Iterable[Row]) -> int:
        """Store each row that is newer than the one stored for its key, as if the rows
        were written one by one (of equal keys in ``rows``, the newest counts); return how
        many rows were stored. Rows may be plain ``(key, event_us, created_us, payload)``
        tuples."""

    def write_columns(self, view: str, batches: Iterable[Columns]) -> int:
        """:meth:`write` of rows given as batches of columns, all in one write (what
        materialization hands over; a store that binds a batch faster than its rows
        overrides it).

        >>> MemoryOnlineStore().write_columns("weather", [(["EWR"], [10], [0], ["[5.0]"])])
        1
        """
        return self.write(view, chain.from_iterable(_rows(batch) for batch in batches))

    @abstractmethod
    def read(self, keys: Mapping[str, Sequence[str]]) -> dict[str, list[OnlineValue | None]]:
        """The stored value of each key of each view, in order, ``None`` where there is
        none. One query per view, or one round trip for all of them where the backend
        can."""

    @abstractmethod
    def drop(self, view: str) -> None:
        """Forget every value of ``view``."""

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections (the store opens them again when used)."""


def batch_rows(batch: Columns) -> int:
    """How many rows a batch of columns holds, after checking it is one."""
    lengths = [len(column) for column in batch]
    if len(lengths) != 4 or len(set(lengths)) > 1:
        raise StoreError(
            f"a batch of online rows has {len(lengths)} columns of lengths "
            f"{lengths}; give as many keys, event times, created times and payloads"
        )
    return lengths[0]


def _rows(batch: Columns) -> Iterator[Row]:
    batch_rows(batch)
    return zip(*batch, strict=True)


def check_row(row: Row) -> Row:
    """``row``, after checking it has the four parts of one."""
    if len(row) != 4:
        raise StoreError(f"an online row is {row!r}; give (key, event_us, created_us, payload)")
    return row


def _newer(row: OnlineRow, stored: tuple[int, int] | None) -> bool:
    return stored is None or (row.event_us, row.created_us) > stored


class MemoryOnlineStore(OnlineStore):
    """Values in a dictionary behind a lock; a write is applied at once, at the end."""

    def __init__(self) -> None:
        self._views: dict[str, dict[str, OnlineRow]] = {}
        self._lock = threading.Lock()

    def write(self, view: str, rows: Iterable[Row]) -> int:
        """Store the newer rows, all at once after reading every row."""
        pending: dict[str, OnlineRow] = {}
        stored_rows = 0
        known = self._views.get(view, {})
        for row in rows:
            new = OnlineRow(*check_row(row))
            current = pending.get(new.key) or known.get(new.key)
            if current is None or _newer(new, (current.event_us, current.created_us)):
                pending[new.key] = new
                stored_rows += 1
        with self._lock:
            stored = self._views.setdefault(view, {})
            stored.update(
                (k, r)
                for k, r in pending.items()
                if _newer(r, (s.event_us, s.created_us) if (s := stored.get(k)) else None)
            )
        return stored_rows

    def read(self, keys: Mapping[str, Sequence[str]]) -> dict[str, list[OnlineValue | None]]:
        """The stored value of each key."""
        with self._lock:
            return {
                view: [
                    None if (r := self._views.get(view, {}).get(k)) is None else OnlineValue(r.event_us, r.payload)
                    for k in wanted
                ]
                for view, wanted in keys.items()
            }  # fmt: skip

    def drop(self, view: str) -> None:
        """Forget ``view``."""
        with self._lock:
            self._views.pop(view, None)


def _table(view: str) -> str:
    return '"fv_' + view.replace('"', '""') + '"'


def _upsert_statement(view: str, rows: int) -> str:
    return (
        f"INSERT INTO {_table(view)} (key, event_us, created_us, payload) VALUES "
        + ",".join(["(?,?,?,?)"] * rows)
        + " ON CONFLICT (key) DO UPDATE SET event_us = excluded.event_us, "
        "created_us = excluded.created_us, payload = excluded.payload "
        "WHERE (excluded.event_us, excluded.created_us) > (event_us, created_us)"
    )


def _flat_chunks(rows: Iterable[Row]) -> Iterator[list[object]]:
    """The parameters of :data:`ROWS_PER_INSERT` rows at a time, four a row."""
    remaining = iter(rows)
    while chunk := list(islice(remaining, ROWS_PER_INSERT)):
        for row in chunk:
            check_row(row)
        flat: list[object] = list(chain.from_iterable(chunk))
        yield flat


def _flat_batch(batch: Columns) -> Iterator[list[object]]:
    """A batch's parameters, :data:`ROWS_PER_INSERT` rows at a time: the columns
    interleaved by slice assignment (no tuple per row)."""
    flat: list[object] = [None] * (4 * batch_rows(batch))
    for i, column in enumerate(batch):
        flat[i::4] = column
    step = 4 * ROWS_PER_INSERT
    for at in range(0, len(flat), step):
        yield flat[at : at + step]


def _not_durable(path: Path, exc: OSError | sqlite3.Error) -> StoreError:
    return StoreError(
        f"the online store {str(path)!r} could not be flushed to disk after a write: {exc}; "
        "check the disk, then write again (rows already stored are kept)"
    )


class SqliteOnlineStore(OnlineStore):
    """Values in a SQLite file, one table per feature view (``fv_<view>``), keyed by
    entity key. A write is one transaction; readers (one connection per thread, WAL)
    see it whole once it commits.

    >>> import tempfile, os
    >>> store = SqliteOnlineStore(os.path.join(tempfile.mkdtemp(), "online.db"))
    >>> store.write("weather", [OnlineRow("EWR", 10, 0, "[5.0]")])
    1
    """

    #: the most keys one SELECT binds (SQLite allows 32,766 variables)
    max_keys = 30_000

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._tables: set[str] = set()

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({str(self.path)!r})"

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                # a new file only: 16 KiB pages take a bulk load with 15-25% less CPU than
                # 4 KiB, and a point read still reads one small page
                conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA busy_timeout=30000")
            except (OSError, sqlite3.Error) as exc:
                raise StoreUnavailableError(
                    f"the online store {str(self.path)!r} cannot be opened: {exc}; check the "
                    "path and its permissions"
                ) from exc
            self._local.conn = conn
        return conn

    def _ensure(self, conn: sqlite3.Connection, view: str) -> None:
        if view not in self._tables:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_table(view)} (key TEXT PRIMARY KEY, "
                "event_us INTEGER NOT NULL, created_us INTEGER NOT NULL, payload TEXT NOT NULL)"
                " WITHOUT ROWID"
            )
            self._tables.add(view)

    def write(self, view: str, rows: Iterable[Row]) -> int:
        """Upsert the newer rows in one transaction (rolled back if anything fails)."""
        return self._upsert(view, _flat_chunks(rows))

    def write_columns(self, view: str, batches: Iterable[Columns]) -> int:
        """:meth:`write` of batches of columns, interleaved into statements' parameters
        without a tuple per row."""
        return self._upsert(view, (chunk for batch in batches for chunk in _flat_batch(batch)))

    def _upsert(self, view: str, chunks: Iterable[list[object]]) -> int:
        """One transaction of INSERTs of :data:`ROWS_PER_INSERT` rows each (``chunks``:
        their parameters, four a row), each row replacing only an older stored one."""
        conn = self._connection()
        statements: dict[int, str] = {}
        try:
            self._ensure(conn, view)
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            # a bulk load dirties more pages than the default 2 MB cache holds
            conn.execute(f"PRAGMA cache_size = {-LOAD_CACHE_KIB}")
            try:
                for chunk in chunks:
                    rows = len(chunk) // 4
                    if rows not in statements:
                        statements[rows] = _upsert_statement(view, rows)
                    conn.execute(statements[rows], chunk)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                conn.execute("PRAGMA cache_size = -2000")
        except sqlite3.Error as exc:
            raise StoreError(
                f"writing feature view {view!r} to the online store {str(self.path)!r} "
                f"failed: {exc}; nothing of this write was kept"
            ) from exc
        written = conn.total_changes - before
        self._make_durable(conn)
        return written

    def _make_durable(self, conn: sqlite3.Connection) -> None:
        """Make a committed write survive a power cut, not only a killed process, before
        it returns (so a watermark moves only after its rows are on disk): a checkpoint
        copies the WAL into the database file, syncing both (``synchronous=NORMAL``);
        where a reader's snapshot holds frames back, the WAL is flushed instead."""
        try:
            [(_, frames, copied)] = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            raise _not_durable(self.path, exc) from exc
        if copied >= frames:
            return
        try:
            descriptor = os.open(self.path.with_name(self.path.name + "-wal"), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as exc:
            raise _not_durable(self.path, exc) from exc

    def read(self, keys: Mapping[str, Sequence[str]]) -> dict[str, list[OnlineValue | None]]:
        """One SELECT per view (per :attr:`max_keys` keys)."""
        conn = self._connection()
        return {view: self._read_view(conn, view, list(wanted)) for view, wanted in keys.items()}

    def _read_view(
        self, conn: sqlite3.Connection, view: str, wanted: list[str]
    ) -> list[OnlineValue | None]:
        found: dict[str, OnlineValue] = {}
        unique = list(dict.fromkeys(wanted))
        try:
            for i in range(0, len(unique), self.max_keys):
                chunk = unique[i : i + self.max_keys]
                marks = ",".join("?" * len(chunk))
                cursor = conn.execute(
                    f"SELECT key, event_us, payload FROM {_table(view)} WHERE key IN ({marks})",
                    chunk,
                )
                found.update({k: OnlineValue(e, p) for k, e, p in cursor})
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise StoreError(
                    f"reading feature view {view!r} from the online store failed: {exc}"
                ) from exc
        return [found.get(k) for k in wanted]

    def drop(self, view: str) -> None:
        """Drop the view's table."""
        self._connection().execute(f"DROP TABLE IF EXISTS {_table(view)}")
        self._tables.discard(view)

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def default_online_url(store_url: str | None, home: str | Path = ".ctloop") -> str:
    """Where a workspace's online store is: ``CTLOOP_ONLINE_STORE_URL`` if set, else a
    SQLite file ``online.db`` beside a SQLite metadata database, else in ``home``.

    >>> default_online_url("sqlite:////srv/ml/.ctloop/metadata.db")
    'sqlite:////srv/ml/.ctloop/online.db'
    """
    configured = os.environ.get("CTLOOP_ONLINE_STORE_URL")
    if configured:
        return configured
    if store_url and store_url.startswith("sqlite:///") and ":memory:" not in store_url:
        folder = Path(store_url.removeprefix("sqlite:///")).parent
        return f"sqlite:///{folder / 'online.db'}"
    return f"sqlite:///{Path(home) / 'online.db'}"


def open_online_store(url: str) -> OnlineStore:
    """The online store at ``url``: ``sqlite:///path``, ``redis://host:port/db`` (with
    ``?prefix=name`` to share a server between projects) or ``memory://``.

    >>> open_online_store("memory://")  # doctest: +ELLIPSIS
    <ctloop.store._online.MemoryOnlineStore object at ...>
    """
    scheme = urlsplit(url).scheme
    if url.startswith("sqlite:///"):
        return SqliteOnlineStore(url.removeprefix("sqlite:///"))
    if scheme in {"redis", "rediss", "unix"}:
        from ctloop.store._online_redis import RedisOnlineStore

        return RedisOnlineStore(url)
    if scheme == "memory":
        return MemoryOnlineStore()
    raise StoreError(
        f"online store URL {url!r} is not supported; use sqlite:///path/online.db, "
        "redis://host:6379/0 or memory://"
    )
