"""Engines for the SQL metadata store: one per database URL per process, tuned per dialect.

SQLite (the default): WAL journal, ``synchronous=NORMAL``, ``busy_timeout``, foreign keys
on; a transaction begins with ``BEGIN IMMEDIATE`` when it will write (the execution
option :data:`~ctloop.store.migrations.WRITE_OPTION`) and with a plain ``BEGIN`` when it
only reads, following the pysqlite recipe of the SQLAlchemy documentation (the driver's
own transaction handling is turned off). The folder of the database file is created.

PostgreSQL (``postgresql+psycopg://…``): ``pool_pre_ping`` so that a restarted server
costs no failed call, and a connect timeout so that an unreachable server fails fast.

:func:`run_transaction` runs a unit of work in one transaction and retries it when the
database reports a transient conflict (SQLite "database is locked", PostgreSQL
serialization failure or deadlock). Errors become ctloop errors that name the URL with
its password hidden.

>>> mask_url("postgresql+psycopg://ml:secret@db:5432/ctloop")
'postgresql+psycopg://ml:***@db:5432/ctloop'
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    StatementError,
)
from sqlalchemy.pool import StaticPool

from ctloop.errors import ConfigError, StoreError, StoreUnavailableError
from ctloop.store._sql_search import register_sqlite_functions
from ctloop.store.migrations import WRITE_OPTION

T = TypeVar("T")

ACCEPTED_URLS = "sqlite:///path/to/metadata.db or postgresql+psycopg://user:password@host:5432/db"
#: how long SQLite waits for a lock inside one statement
SQLITE_BUSY_TIMEOUT_MS = 5_000
#: how long opening a fresh SQLite file tries to switch it to WAL
WAL_SWITCH_SECONDS = 10.0
#: how long a transaction is retried on transient conflicts before the error surfaces
RETRY_SECONDS = 120.0
_PG_RETRYABLE_STATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock
_SQLITE_RETRYABLE = (
    "database is locked",
    "database is busy",
    "database table is locked",
)

_engines: dict[tuple[int, str], Engine] = {}
_engines_lock = threading.Lock()


def normalize_url(url: str) -> str:
    """The SQLAlchemy URL for a ctloop store URL; an unsupported one raises ConfigError.

    ``postgresql://`` and ``postgres://`` mean the psycopg (3) driver.

    >>> normalize_url("postgres://u@h/db")
    'postgresql+psycopg://u@h/db'
    """
    for alias in ("postgresql://", "postgres://"):
        if url.startswith(alias):
            return "postgresql+psycopg://" + url[len(alias) :]
    if url.startswith(("sqlite://", "postgresql+psycopg://")):
        return url
    raise ConfigError(
        f"metadata store URL {mask_url(url)!r} is not supported; use {ACCEPTED_URLS} "
        "(CTLOOP_STORE_URL or 'store_url:' in ctloop.yaml)"
    )


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (unchanged if it does not parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1] if "@" in url else url


def engine_for(url: str) -> Engine:
    """The process's engine for ``url`` (created on first use); an in-memory SQLite URL
    (``sqlite://``) gets a new engine, and so a new empty database, every time.

    >>> engine_for("sqlite:////tmp/a.db") is engine_for("sqlite:////tmp/a.db")  # doctest: +SKIP
    True
    """
    if is_in_memory(url):
        return _create_engine(url)
    key = (os.getpid(), url)
    engine = _engines.get(key)
    if engine is None:
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = _create_engine(url)
    return engine


def is_in_memory(url: str) -> bool:
    """Whether ``url`` names an in-memory SQLite database.

    >>> is_in_memory("sqlite://"), is_in_memory("sqlite:///:memory:"), is_in_memory("sqlite:///a.db")
    (True, True, False)
    """
    if not url.startswith("sqlite:"):
        return False
    try:
        return make_url(url).database in (None, "", ":memory:")
    except ArgumentError:
        return False


def forget_engine(url: str) -> None:
    """Dispose of the process's engine for ``url`` and drop it from the cache."""
    engine = _engines.pop((os.getpid(), url), None)
    if engine is not None:
        engine.dispose()


def _create_engine(url: str) -> Engine:
    sa_url = normalize_url(url)
    try:
        parsed = make_url(sa_url)
    except ArgumentError as exc:
        raise ConfigError(
            f"metadata store URL {mask_url(url)!r} cannot be parsed ({exc}); use {ACCEPTED_URLS}"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        return _create_sqlite_engine(sa_url, parsed.database)
    connect_args: dict[str, Any] = {"application_name": "ctloop"}
    if "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = 10
    return create_engine(sa_url, pool_pre_ping=True, connect_args=connect_args)


def _create_sqlite_engine(sa_url: str, database: str | None) -> Engine:
    in_memory = is_in_memory(sa_url)
    if in_memory:
        # one shared connection: every new connection would see its own empty database
        engine = create_engine(
            sa_url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        _create_folder(Path(str(database)).expanduser().parent, sa_url)
        engine = create_engine(sa_url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        _tune_sqlite(dbapi_connection, wal=not in_memory)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _create_folder(folder: Path, url: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailableError(
            f"the folder {folder} of the metadata database {mask_url(url)} cannot be created "
            f"({exc.strerror or exc}); choose a writable place (CTLOOP_HOME or CTLOOP_STORE_URL)"
        ) from exc


def _tune_sqlite(dbapi_connection: sqlite3.Connection, *, wal: bool) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if wal and cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()
    register_sqlite_functions(dbapi_connection)


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    # Switching the journal mode needs an exclusive lock and does not wait in
    # busy_timeout: a busy database answers with an error or with its old mode, so
    # processes opening a fresh file together retry here. A file system without WAL
    # support keeps the rollback journal, which is slower but correct.
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    attempt = 0
    while time.monotonic() < deadline:
        try:
            if cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as exc:
            if not _is_sqlite_busy(str(exc)):
                raise
        attempt += 1
        time.sleep(_backoff(attempt))


def writing(engine: Engine) -> Engine:
    """A view of ``engine`` whose transactions take SQLite's write lock up front
    (``BEGIN IMMEDIATE``), so that a read-then-write transaction never fails half-way
    on a lock upgrade."""
    return engine.execution_options(**{WRITE_OPTION: True})


def run_transaction(
    engine: Engine,
    work: Callable[[Connection], T],
    *,
    url: str,
    retry_integrity: bool = False,
) -> T:
    """Run ``work`` in one transaction of ``engine``, retrying it on transient conflicts.

    Pass :func:`writing` ``(engine)`` for work that writes. ``retry_integrity`` also
    retries unique-constraint races (the work must re-read what it computed). Errors
    are translated as by :func:`call_with_retry`.
    """

    def attempt() -> T:
        with engine.begin() as connection:
            return work(connection)

    return call_with_retry(attempt, url=url, retry_integrity=retry_integrity)


def call_with_retry(attempt: Callable[[], T], *, url: str, retry_integrity: bool = False) -> T:
    """Call ``attempt`` until it does not hit a transient conflict (for up to
    :data:`RETRY_SECONDS`, backing off). Database errors become
    :class:`~ctloop.errors.StoreError`, an unreachable database
    :class:`~ctloop.errors.StoreUnavailableError`; a value the database cannot take
    (a naive datetime) raises the original ``ValueError``/``TypeError``."""
    deadline = time.monotonic() + RETRY_SECONDS
    tries = 0
    while True:
        try:
            return attempt()
        except DBAPIError as exc:
            tries += 1
            retry = _is_transient(exc) or (retry_integrity and isinstance(exc, IntegrityError))
            if retry and time.monotonic() < deadline:
                time.sleep(_backoff(tries))
                continue
            raise translate_error(exc, url) from exc
        except StatementError as exc:
            if isinstance(exc.orig, ValueError | TypeError):
                raise exc.orig from None  # a bad value from the caller, not a store failure
            raise translate_error(exc, url) from exc


def translate_error(exc: StatementError, url: str) -> StoreError:
    """The ctloop error for a database error at ``url``."""
    where = mask_url(url)
    detail = _first_line(str(exc.orig) if exc.orig is not None else str(exc))
    password = _password(url)
    if password:
        detail = detail.replace(password, "***")
    if isinstance(exc, DBAPIError) and _is_unavailable(exc):
        return StoreUnavailableError(
            f"the metadata database at {where} cannot be reached ({detail}); check that the "
            "server is running and the URL, user and password are right "
            "(CTLOOP_STORE_URL or 'store_url:' in ctloop.yaml)"
        )
    if isinstance(exc, IntegrityError):
        return StoreError(
            f"the metadata database at {where} refused a write that breaks its integrity "
            f"({detail}); this is a bug in the caller: report it with the command you ran"
        )
    return StoreError(f"the metadata database at {where} failed: {detail}")


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except ArgumentError:
        return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no detail"


def _is_transient(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _PG_RETRYABLE_STATES:
        return True
    return isinstance(exc.orig, sqlite3.OperationalError) and _is_sqlite_busy(str(exc.orig))


def _is_sqlite_busy(message: str) -> bool:
    return any(text in message.lower() for text in _SQLITE_RETRYABLE)


def _is_unavailable(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    if isinstance(exc.orig, sqlite3.OperationalError):
        return "unable to open database" in str(exc.orig)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(exc, OperationalError) and sqlstate is None:
        return True  # psycopg: no answer from a server at all (refused, timed out, dropped)
    return sqlstate is not None and sqlstate.startswith(("08", "28", "3D", "57P"))


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: ~5 ms, 10 ms, … capped at 0.5 s."""
    return min(0.5, 0.005 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.5)


def _dispose_after_fork() -> None:
    # A forked child must not share its parent's connections (SQLAlchemy's advice).
    for engine in _engines.values():
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_dispose_after_fork)
