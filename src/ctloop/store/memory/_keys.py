"""In-memory API keys and audit log: the fakes of :class:`~ctloop.store.keys.KeyStore`
and :class:`~ctloop.store.audit.AuditLog`, passing the same contract tests as the SQL
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

from ctloop.store._query import given, matching
from ctloop.store.audit import AuditDraft, AuditLog, AuditRecord, check_limit
from ctloop.store.keys import (
    ApiKeyRecord,
    CreatedKey,
    KeyStore,
    hash_key,
    missing_key,
    new_key_record,
)
from ctloop.store.memory._records import json_copy
from ctloop.store.records import utcnow
from ctloop.store.schema import to_utc

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

    def create(
        self,
        name: str,
        role: str,
        *,
        created_by: str = "",
        expires_at: datetime | None = None,
    ) -> CreatedKey:
        """Create a key named ``name`` with ``role``; the result carries the key."""
        record, secret = new_key_record(name, role, created_by=created_by, expires_at=expires_at)
        with self._lock:
            self._keys[record.id] = record
            self._by_hash[hash_key(secret)] = record.id
        return CreatedKey(record, secret)

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

    def list(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        action: str | None = None,
        actor: str | None = None,
    ) -> list[AuditRecord]:
        """Up to ``limit`` entries newest first, filtered as asked."""
        check_limit(limit)
        with self._lock:
            entries = list(reversed(self._entries))
        found = [
            e
            for e in matching(entries, given(action=action, actor=actor))
            if before is None or e.id < before
        ]
        return [replace(e, detail=json_copy(e.detail)) for e in found[:limit]]
