"""The audit log: every write made through the team server (table ``audit_log`` of
migration 0004) — who (the key's id and name), what (an action on an object, with
details), when, from where (the client's address) and how it ended (the HTTP status).

Entries are only appended; they are read newest first, a page at a time (``before`` is
the id of the last entry of the previous page).

>>> log = SqlAuditLog("sqlite://")
>>> entry = log.append(AuditDraft("ana", "alias.set", "flights@champion", key_id="k1"))
>>> [e.action for e in log.list()], log.list(before=entry.id)
(['alias.set'], [])
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from ctloop.store._query import given, where_equal
from ctloop.store._schema import AUDIT_LOG
from ctloop.store._transactions import SqlTransactions
from ctloop.store.records import utcnow

__all__ = [
    "AuditDraft",
    "AuditLog",
    "AuditRecord",
    "SqlAuditLog",
    "append_audit_row",
    "check_limit",
]

#: one entry's insert, built once (its compiled form is cached by SQLAlchemy)
_INSERT = insert(AUDIT_LOG).returning(AUDIT_LOG.c.id)


@dataclass(frozen=True)
class AuditDraft:
    """An entry to append: ``actor`` (the key's name) did ``action`` on ``object``."""

    actor: str
    action: str
    object: str
    key_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    remote: str = ""
    status: int = 200


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the audit log; ``id`` grows with every entry."""

    id: int
    at: datetime
    key_id: str | None
    actor: str
    action: str
    object: str
    detail: dict[str, Any]
    remote: str
    status: int


def check_limit(limit: int) -> None:
    """Refuse a page size below 1 with a ``ValueError`` that names it."""
    if limit < 1:
        raise ValueError(f"limit {limit} is not a page size; pass a number of 1 or more")


class AuditLog(ABC):
    """An append-only log of writes.

    Errors: :meth:`list` with ``limit`` below 1 raises ``ValueError``; an unreachable
    backend raises :class:`~ctloop.errors.StoreUnavailableError`. Nothing else fails:
    a filter that matches nothing answers an empty list.
    """

    @abstractmethod
    def append(self, draft: AuditDraft) -> AuditRecord:
        """Append ``draft``, stamped with the current time and the next id."""

    def list(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        action: str | None = None,
        actor: str | None = None,
    ) -> list[AuditRecord]:
        """Up to ``limit`` entries newest first, with ids below ``before`` when given,
        optionally of one ``action`` or one ``actor``."""
        check_limit(limit)
        return self._page(limit, before, given(action=action, actor=actor))

    @abstractmethod
    def _page(
        self, limit: int, before: int | None, filters: dict[str, Any]
    ) -> builtins.list[AuditRecord]:
        """Up to ``limit`` entries newest first, with ids below ``before`` when given,
        whose fields equal ``filters``."""


def append_audit_row(conn: Connection, draft: AuditDraft) -> AuditRecord:
    """Append ``draft`` in the transaction of ``conn``: a write and its entry commit (or
    fail) together."""
    values = {**draft.__dict__, "detail": dict(draft.detail), "at": utcnow()}
    entry_id = int(conn.execute(_INSERT, values).scalar_one())
    return AuditRecord(id=entry_id, **values)


class SqlAuditLog(SqlTransactions, AuditLog):
    """The audit log in the metadata database at ``url``.

    >>> SqlAuditLog("sqlite://").list()
    []
    """

    def append(self, draft: AuditDraft) -> AuditRecord:
        """Append ``draft``, stamped with the current time and the next id."""
        return self._write(lambda conn: append_audit_row(conn, draft))

    def _page(self, limit: int, before: int | None, filters: dict[str, Any]) -> list[AuditRecord]:
        stmt = select(AUDIT_LOG).order_by(AUDIT_LOG.c.id.desc()).limit(limit)
        stmt = where_equal(stmt, AUDIT_LOG, filters)
        if before is not None:
            stmt = stmt.where(AUDIT_LOG.c.id < before)
        return self._read(
            lambda conn: [
                AuditRecord(**{**dict(r), "detail": dict(r["detail"] or {})})
                for r in conn.execute(stmt).mappings()
            ]
        )
