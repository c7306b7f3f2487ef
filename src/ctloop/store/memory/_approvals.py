"""In-memory approvals: the fake of :class:`~ctloop.store._approvals.ApprovalStore`,
passing the same contract tests as the SQL store.

>>> store = MemoryApprovalStore()
>>> store.request("churn", 7, "ab12", "prod", source="staging", by="ci").state
'requested'
"""

from __future__ import annotations

import builtins
import threading
from dataclasses import replace
from typing import Any

from ctloop.store._approvals import (
    ApprovalRecord,
    ApprovalStore,
    check_decision,
    missing_approval,
)
from ctloop.store._query import matching
from ctloop.store.records import utcnow

__all__ = ["MemoryApprovalStore"]


class MemoryApprovalStore(ApprovalStore):
    """Approvals in a dict behind a lock, numbered from 1."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[int, ApprovalRecord] = {}

    def request(
        self, model: str, version: int, digest: str, environment: str, *, source: str, by: str
    ) -> ApprovalRecord:
        """Ask to promote ``model@version`` into ``environment`` (see the interface)."""
        with self._lock:
            found = self._open(model, digest, environment)
            if found is not None:
                return found
            record = ApprovalRecord(
                id=len(self._records) + 1,
                model=model,
                version=int(version),
                digest=digest,
                environment=environment,
                source=source,
                state="requested",
                requested_by=by,
                requested_at=utcnow(),
            )
            self._records[record.id] = record
            return record

    def _open(self, model: str, digest: str, environment: str) -> ApprovalRecord | None:
        for record in sorted(self._records.values(), key=lambda r: -r.id):
            same = (record.model, record.digest, record.environment) == (model, digest, environment)
            if same and record.state in ("requested", "approved"):
                return record
        return None

    def decide(self, approval_id: int, state: str, *, by: str, reason: str) -> ApprovalRecord:
        """Approve or reject a requested promotion (see the interface)."""
        with self._lock:
            record = self._get(approval_id)
            check_decision(record, state, reason)
            moved = replace(record, state=state, decided_by=by, decided_at=utcnow(), reason=reason)
            self._records[record.id] = moved
            return moved

    def mark_deployed(self, approval_id: int, *, version: int) -> ApprovalRecord:
        """Record the version an approved promotion became (see the interface)."""
        with self._lock:
            record = self._get(approval_id)
            check_decision(record, "deployed", record.reason)
            moved = replace(
                record, state="deployed", deployed_version=int(version), deployed_at=utcnow()
            )
            self._records[record.id] = moved
            return moved

    def get(self, approval_id: int) -> ApprovalRecord:
        """The approval ``approval_id``."""
        with self._lock:
            return self._get(approval_id)

    def _get(self, approval_id: int) -> ApprovalRecord:
        try:
            return self._records[int(approval_id)]
        except KeyError:
            raise missing_approval(approval_id) from None

    def _page(self, limit: int, filters: dict[str, Any]) -> builtins.list[ApprovalRecord]:
        with self._lock:
            found = matching(sorted(self._records.values(), key=lambda r: -r.id), filters)
        return found[:limit]
