"""Read and write transactions on the metadata database, its schema migrated on first use.

The base of the SQL-backed stores (metadata, the registry, the trigger store…): reads run on the
plain engine, writes on the writing engine (SQLite ``BEGIN IMMEDIATE``), both retried on
transient lock and connection errors.

>>> SqlTransactions("sqlite://")._read(lambda conn: 1)
1
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine

from ctloop.store._sql_engine import call_with_retry, engine_for, run_transaction, writing
from ctloop.store.migrations import ensure_schema

__all__ = ["SqlTransactions"]

T = TypeVar("T")

#: engines whose database this process has brought up to date (one check per engine)
_migrated: weakref.WeakSet[Engine] = weakref.WeakSet()
_migrated_lock = threading.Lock()


class SqlTransactions:
    """Transactions on the database at ``url``; the schema is brought up to date once.

    ``retry_integrity``: whether a write that breaks a constraint is retried (right where
    a concurrent writer took a number first, as registry versions; wrong where the
    constraint names a caller's mistake, as a missing artifact).
    """

    retry_integrity = True

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = engine_for(url)
        self._write_engine = writing(self._engine)
        self._ready = False

    def _read(self, work: Callable[[Connection], T]) -> T:
        self._ensure_schema()
        return run_transaction(self._engine, work, url=self.url)

    def _write(self, work: Callable[[Connection], T], *, retry_integrity: bool | None = None) -> T:
        """Run ``work`` in a write transaction (``retry_integrity``: this write's own
        choice, else the class's)."""
        self._ensure_schema()
        retry = self.retry_integrity if retry_integrity is None else retry_integrity
        return run_transaction(self._write_engine, work, url=self.url, retry_integrity=retry)

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        if self._engine not in _migrated:
            with _migrated_lock:
                if self._engine not in _migrated:
                    call_with_retry(
                        lambda: ensure_schema(self._engine, url_for_messages=self.url),
                        url=self.url,
                    )
                    _migrated.add(self._engine)
        self._ready = True

    def _forget_schema(self) -> None:
        """Check the schema again on next use (the engine's database may be gone: an
        in-memory one whose connections were closed)."""
        with _migrated_lock:
            _migrated.discard(self._engine)
        self._ready = False
