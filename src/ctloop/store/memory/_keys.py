"""In-memory API keys and audit log: the fakes of :class:`~ctloop.store._keys.KeyStore`
and :class:`~ctloop.store._audit.AuditLog`, passing the same contract tests as the SQL
stores.

>>> keys = MemoryKeyStore()
>>> created = keys.create("ci", "viewer")
>>> keys.find(created.secret) == created.record, keys.find("ctl_other")
(True, None)
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime
from typing import Any

from ctloop.store._audit import AuditDraft, AuditLog, AuditRecord
from ctloop.store._keys import (
    ApiKeyRecord,
    KeyStore,
    hash_key,
    missing_key,
)
from ctloop.store._query import matching
from ctloop.store._schema import to_utc
from ctloop.store.memory._records import json_copy
from ctloop.store.records import utcnow

__all__ = ["MemoryAuditLog", "MemoryKeyStore"]


class MemoryKeyStore(KeyStore):
    """API keys in a dict behind a lock, found by the SHA-256 of the key.

    >>> MemoryKeyStore().list()
    []
    """

    def __init__(self) -> None:
        self._keys: dict[str, ApiKeyRecord] = {}
        self._by_hash: dict[str, str] = {}
        self._lock = threading.Lock()

    def _add_key(self, record: ApiKeyRecord, key_hash: str) -> None:
        with self._lock:
            self._keys[record.id] = record
            self._by_hash[key_hash] = record.id

    def get(self, key_id: str) -> ApiKeyRecord:
        """The key with this id."""
        with self._lock:
            found = self._keys.get(key_id)
        if found is None:
            raise missing_key(key_id)
        return found

    def list(self) -> list[ApiKeyRecord]:
        """Every key, oldest first."""
        with self._lock:
            keys = list(self._keys.values())
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    def find(self, secret: str) -> ApiKeyRecord | None:
        """The key whose secret is ``secret``, ``None`` if there is none."""
        with self._lock:
            key_id = self._by_hash.get(hash_key(secret))
            return None if key_id is None else self._keys[key_id]

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Revoke the key; return it."""
        with self._lock:
            found = self._keys.get(key_id)
            if found is None:
                raise missing_key(key_id)
            if found.revoked_at is None:
                found = self._keys[key_id] = replace(found, revoked_at=utcnow())
        return found

    def touch(self, key_id: str, at: datetime) -> None:
        """Record that the key was used at ``at``."""
        at = to_utc(at)
        with self._lock:
            found = self._keys.get(key_id)
            if found is not None and (found.last_used_at is None or found.last_used_at < at):
                self._keys[key_id] = replace(found, last_used_at=at)


class MemoryAuditLog(AuditLog):
    """The audit log in a list behind a lock (an entry's id is its place + 1).

    >>> MemoryAuditLog().list()
    []
    """

    def __init__(self) -> None:
        self._entries: list[AuditRecord] = []
        self._lock = threading.Lock()

    def append(self, draft: AuditDraft) -> AuditRecord:
        """Append ``draft``, stamped with the current time and the next id."""
        with self._lock:
            record = AuditRecord(
                id=len(self._entries) + 1,
                at=utcnow(),
                **{**draft.__dict__, "detail": json_copy(draft.detail)},
            )
            self._entries.append(record)
        return record

    def _page(self, limit: int, before: int | None, filters: dict[str, Any]) -> list[AuditRecord]:
        with self._lock:
            entries = list(reversed(self._entries))
        found = [e for e in matching(entries, filters) if before is None or e.id < before]
        return [replace(e, detail=json_copy(e.detail)) for e in found[:limit]]
