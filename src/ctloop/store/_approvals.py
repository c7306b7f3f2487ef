"""Approvals of promotions into an environment (table ``approvals`` of migration 0007).

A promotion into an environment that requires one waits for an approval. Each approval is
a record with a small state machine::

    requested ──approve──> approved ──deploy──> deployed
        └─────reject────> rejected

It names the model version as its source environment knows it (``model``, ``version``)
and by the digest of its artifact, so an approval of ``churn@7`` never lets another
build through; who asked and when, who decided, when and why, and which version of the
environment's registry it became.

>>> store = SqlApprovalStore("sqlite://")
>>> asked = store.request("churn", 7, "ab12", "prod", source="staging", by="ci")
>>> store.decide(asked.id, "approved", by="ana", reason="reviewed ci-report").state
'approved'
>>> store.mark_deployed(asked.id, version=1).state
'deployed'
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from ctloop.errors import ApprovalError, NotFoundError
from ctloop.store._query import given, where_equal
from ctloop.store._schema import APPROVALS
from ctloop.store._transactions import SqlTransactions
from ctloop.store.records import utcnow

__all__ = [
    "APPROVAL_STATES",
    "ApprovalRecord",
    "ApprovalStore",
    "SqlApprovalStore",
    "check_decision",
    "missing_approval",
]

#: every state of an approval, in the order an approval moves through them
APPROVAL_STATES = ("requested", "approved", "rejected", "deployed")
#: the states each state may move to
_NEXT: dict[str, tuple[str, ...]] = {
    "requested": ("approved", "rejected"),
    "approved": ("deployed",),
    "rejected": (),
    "deployed": (),
}


@dataclass(frozen=True)
class ApprovalRecord:
    """One request to promote ``model@version`` (artifact ``digest``) from ``source``
    into ``environment``, and its state (see the module docstring)."""

    id: int
    model: str
    version: int
    digest: str
    environment: str
    source: str
    state: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str = ""
    deployed_version: int | None = None
    deployed_at: datetime | None = None

    @property
    def reference(self) -> str:
        """``MODEL@VERSION`` in the source environment."""
        return f"{self.model}@{self.version}"

    def describe(self) -> str:
        """One line for people: ``#3 churn@7 staging -> prod: approved by ana (why)``."""
        line = f"#{self.id} {self.reference} {self.source} -> {self.environment}: {self.state}"
        if self.decided_by:
            line += f" by {self.decided_by}"
        if self.reason:
            line += f" ({self.reason})"
        if self.deployed_version is not None:
            line += f", now {self.model}@{self.deployed_version} there"
        return line


def check_decision(record: ApprovalRecord, state: str, reason: str) -> None:
    """Refuse moving ``record`` to ``state`` where the state machine does not allow it,
    or a decision without a reason, with an :class:`ApprovalError` that says why."""
    if state not in APPROVAL_STATES:
        raise ApprovalError(
            f"approval state {state!r} is unknown; use one of {', '.join(APPROVAL_STATES)}"
        )
    if state not in _NEXT[record.state]:
        raise ApprovalError(
            f"approval #{record.id} of {record.reference} for {record.environment} is "
            f"{record.state}{_by(record)}; it cannot become {state} "
            f"(a {record.state} approval can become {', '.join(_NEXT[record.state]) or 'nothing else'})"
        )
    if state in ("approved", "rejected") and not reason.strip():
        raise ApprovalError(
            f"{'approving' if state == 'approved' else 'rejecting'} {record.reference} for "
            f"{record.environment} needs a reason, e.g. --reason 'reviewed ci-report'"
        )


def missing_approval(approval_id: int) -> NotFoundError:
    """The error for an approval id that is not there."""
    return NotFoundError(
        f"approval #{approval_id} does not exist; list approvals with `ctloop env status`"
    )


def check_page_size(limit: int) -> None:
    """Raise ``ValueError`` naming ``limit`` unless it is a page size (1 or more)."""
    if limit < 1:
        raise ValueError(f"limit {limit} is not a page size; pass a number of 1 or more")


def _by(record: ApprovalRecord) -> str:
    return f" (by {record.decided_by})" if record.decided_by else ""


class ApprovalStore(ABC):
    """Approvals of promotions, in the metadata store of the environment promoted into.

    Errors: an unknown id raises :class:`~ctloop.errors.NotFoundError`; a move the state
    machine does not allow, or an approval or rejection without a reason, raises
    :class:`~ctloop.errors.ApprovalError`; ``limit`` below 1 raises ``ValueError``; an
    unreachable backend raises :class:`~ctloop.errors.StoreUnavailableError`.
    """

    @abstractmethod
    def request(
        self, model: str, version: int, digest: str, environment: str, *, source: str, by: str
    ) -> ApprovalRecord:
        """Ask to promote ``model@version`` (artifact ``digest``) into ``environment``.
        An open request for the same digest (requested or approved, not yet deployed)
        is returned as it is rather than asked twice."""

    @abstractmethod
    def decide(self, approval_id: int, state: str, *, by: str, reason: str) -> ApprovalRecord:
        """Approve or reject (``state``) a requested promotion, recording who and why."""

    @abstractmethod
    def mark_deployed(self, approval_id: int, *, version: int) -> ApprovalRecord:
        """Record that an approved promotion became ``version`` of the environment."""

    @abstractmethod
    def get(self, approval_id: int) -> ApprovalRecord:
        """The approval ``approval_id``."""

    def list(
        self,
        *,
        model: str | None = None,
        environment: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> builtins.list[ApprovalRecord]:
        """Up to ``limit`` approvals newest first, of one model, environment or state."""
        check_page_size(limit)
        return self._page(limit, given(model=model, environment=environment, state=state))

    @abstractmethod
    def _page(self, limit: int, filters: dict[str, Any]) -> builtins.list[ApprovalRecord]:
        """Up to ``limit`` approvals newest first whose fields equal ``filters``."""

    def open_request(self, model: str, digest: str, environment: str) -> ApprovalRecord | None:
        """The newest approval of ``digest`` for ``environment`` that is requested or
        approved (not rejected, not deployed), ``None`` when there is none."""
        for record in self.list(model=model, environment=environment, limit=1000):
            if record.digest == digest and record.state in ("requested", "approved"):
                return record
        return None


class SqlApprovalStore(SqlTransactions, ApprovalStore):
    """Approvals in the metadata database at ``url``.

    >>> SqlApprovalStore("sqlite://").list()
    []
    """

    retry_integrity = False

    def request(
        self, model: str, version: int, digest: str, environment: str, *, source: str, by: str
    ) -> ApprovalRecord:
        """Ask to promote ``model@version`` into ``environment`` (see the interface)."""
        found = self.open_request(model, digest, environment)
        if found is not None:
            return found
        values: dict[str, Any] = {
            "model": model,
            "version": int(version),
            "digest": digest,
            "environment": environment,
            "source": source,
            "state": "requested",
            "requested_by": by,
            "requested_at": utcnow(),
            "reason": "",
        }
        stmt = insert(APPROVALS).values(**values).returning(APPROVALS.c.id)
        approval_id = self._write(lambda conn: int(conn.execute(stmt).scalar_one()))
        return ApprovalRecord(id=approval_id, **values)

    def decide(self, approval_id: int, state: str, *, by: str, reason: str) -> ApprovalRecord:
        """Approve or reject a requested promotion (see the interface)."""
        record = self.get(approval_id)
        check_decision(record, state, reason)
        changes = {"state": state, "decided_by": by, "decided_at": utcnow(), "reason": reason}
        return self._move(record, changes)

    def mark_deployed(self, approval_id: int, *, version: int) -> ApprovalRecord:
        """Record the version an approved promotion became (see the interface)."""
        record = self.get(approval_id)
        check_decision(record, "deployed", record.reason)
        changes = {"state": "deployed", "deployed_version": int(version), "deployed_at": utcnow()}
        return self._move(record, changes)

    def _move(self, record: ApprovalRecord, changes: dict[str, Any]) -> ApprovalRecord:
        # compare-and-set on the state: of two deciders at once, the second is refused
        stmt = (
            update(APPROVALS)
            .where(APPROVALS.c.id == record.id, APPROVALS.c.state == record.state)
            .values(**changes)
        )
        moved = self._write(lambda conn: conn.execute(stmt).rowcount)
        if moved != 1:
            now = self.get(record.id)
            check_decision(now, str(changes["state"]), str(changes.get("reason", "-")))
        return replace(record, **changes)

    def get(self, approval_id: int) -> ApprovalRecord:
        """The approval ``approval_id``."""
        stmt = select(APPROVALS).where(APPROVALS.c.id == int(approval_id))
        row = self._read(lambda conn: conn.execute(stmt).mappings().first())
        if row is None:
            raise missing_approval(approval_id)
        return ApprovalRecord(**dict(row))

    def _page(self, limit: int, filters: dict[str, Any]) -> builtins.list[ApprovalRecord]:
        stmt = select(APPROVALS).order_by(APPROVALS.c.id.desc()).limit(limit)
        stmt = where_equal(stmt, APPROVALS, filters)
        return self._read(
            lambda conn: [ApprovalRecord(**dict(r)) for r in conn.execute(stmt).mappings()]
        )
