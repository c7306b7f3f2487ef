"""Trigger state and firings in the metadata database (tables of migration 0003).

A trigger remembers what it has seen (``cursor``), when it last fired and until when it
cools down (``trigger_state``); each firing is a row of ``trigger_firings`` whose
``fire_key`` names the occasion (a cron slot, a set of new files, a monitor report).

:meth:`SqlTriggerStore.claim` is the one place a firing is born. In one write
transaction (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``SELECT … FOR UPDATE`` on the
trigger's state row) it checks that the cursor is still the one the caller evaluated
against, that the occasion has not fired yet and that fewer than ``max_concurrent``
firings of the trigger are active, then inserts the firing and moves the cursor. Two
schedulers, or a scheduler and its restarted self, therefore fire each occasion once;
the UNIQUE (trigger, fire_key) constraint backs this up.

>>> store = SqlTriggerStore("sqlite://")
>>> claim = store.claim(FiringClaim("p/nightly", "p", "schedule", "slot:1", "cron"))
>>> claim.outcome, store.claim(FiringClaim("p/nightly", "p", "schedule", "slot:1", "cron")).outcome
('claimed', 'duplicate')
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.engine import RowMapping

from ctloop.errors import NotFoundError
from ctloop.store._query import given, where_equal
from ctloop.store._schema import TRIGGER_FIRINGS, TRIGGER_STATE
from ctloop.store._transactions import SqlTransactions
from ctloop.store.records import utcnow
from ctloop.store.statuses import FiringStatus

__all__ = [
    "FIRING_CHANGES",
    "ClaimResult",
    "ClaimTerms",
    "FiringClaim",
    "FiringRecord",
    "SqlTriggerStore",
    "TriggerStateRecord",
    "TriggerStore",
    "check_firing_changes",
    "claimed_changes",
    "cursor_moved",
    "evaluation_changes",
    "firing_values",
    "missing_firing",
]

T = TypeVar("T")


@dataclass(frozen=True)
class TriggerStateRecord:
    """What one trigger remembers between evaluations."""

    name: str
    pipeline: str
    kind: str
    cursor: dict[str, Any]
    last_checked_at: datetime | None
    last_fired_at: datetime | None
    cooldown_until: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class FiringRecord:
    """One firing of a trigger and, once launched, the run it started; ``status`` is a
    :class:`~ctloop.store.statuses.FiringStatus`."""

    id: int
    trigger: str
    pipeline: str
    kind: str
    fire_key: str
    status: str
    reason: str
    run_id: str | None
    cause_artifact_id: str | None
    details: dict[str, Any]
    fired_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class FiringClaim:
    """A firing to claim: the trigger, the occasion (``fire_key``) and why it fires."""

    trigger: str
    pipeline: str
    kind: str
    fire_key: str
    reason: str
    cause_artifact_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    status: str = FiringStatus.CLAIMED


@dataclass(frozen=True)
class ClaimResult:
    """The outcome of :meth:`SqlTriggerStore.claim`: ``claimed`` (``firing`` is set),
    ``duplicate`` (the occasion fired already), ``busy`` (``max_concurrent`` firings are
    active) or ``moved`` (another process moved the cursor since it was read)."""

    outcome: Literal["claimed", "duplicate", "busy", "moved"]
    firing: FiringRecord | None = None


_UNSET: Any = object()


class TriggerStore(ABC):
    """Trigger state and firings: what each trigger has seen, and each occasion it fired.

    Errors: :meth:`get_firing` of an id that is not there raises
    :class:`~ctloop.errors.NotFoundError`; an unreachable backend
    :class:`~ctloop.errors.StoreUnavailableError`. Everything else answers with a value
    (``None``, ``False``, a :class:`ClaimResult` outcome), never an error: races between
    schedulers are outcomes, not failures.
    """

    @abstractmethod
    def get_state(self, name: str) -> TriggerStateRecord | None:
        """The state of trigger ``name``, ``None`` before its first evaluation."""

    @abstractmethod
    def list_states(self) -> list[TriggerStateRecord]:
        """Every trigger's state, by name."""

    def save_state(
        self,
        name: str,
        pipeline: str,
        kind: str,
        *,
        cursor: dict[str, Any] | None = None,
        expected_cursor: dict[str, Any] | None = _UNSET,
        checked_at: datetime | None = None,
    ) -> bool:
        """Record an evaluation of ``name``: ``last_checked_at`` and, when given, a new
        ``cursor``. With ``expected_cursor`` the cursor moves only if it still equals
        that value (compare-and-set); return whether the state was written."""
        changes = evaluation_changes(checked_at or utcnow(), cursor)
        return self._save_state(name, pipeline, kind, changes, expected_cursor)

    @abstractmethod
    def _save_state(
        self, name: str, pipeline: str, kind: str, changes: dict[str, Any], expected_cursor: Any
    ) -> bool:
        """Apply an evaluation's ``changes`` to the state of ``name`` (created when
        missing) unless :func:`cursor_moved`; return whether it did."""

    def claim(
        self,
        claim: FiringClaim,
        *,
        expected_cursor: dict[str, Any] | None = _UNSET,
        new_cursor: dict[str, Any] | None = None,
        max_concurrent: int | None = None,
        cooldown_until: datetime | None = None,
    ) -> ClaimResult:
        """Claim the occasion ``claim.fire_key`` of ``claim.trigger`` atomically: outcome
        ``moved`` when the cursor is no longer ``expected_cursor``, ``duplicate`` when the
        occasion fired already, ``busy`` at ``max_concurrent`` active firings, else
        ``claimed`` with the new firing; then the cursor becomes ``new_cursor`` (when
        given), ``last_fired_at`` now (for an active firing) and ``cooldown_until`` the
        given time."""
        terms = ClaimTerms(expected_cursor, new_cursor, max_concurrent, cooldown_until)
        return self._claim(claim, terms)

    @abstractmethod
    def _claim(self, claim: FiringClaim, terms: ClaimTerms) -> ClaimResult:
        """In one step: lock the state of ``claim.trigger`` (created when missing), return
        :meth:`ClaimTerms.refusal` if any, else insert the firing, apply
        :meth:`ClaimTerms.changes` to the state and return the claimed firing."""

    @abstractmethod
    def update_firing(
        self, firing_id: int, *, only_if: Collection[str] | None = None, **changes: Any
    ) -> bool:
        """Change fields of a firing (:data:`FIRING_CHANGES`: ``status``, ``run_id``,
        ``details``…), only while its status is one of ``only_if`` when given; return
        whether it changed (``False`` for an id that is not there). Another field or an
        unknown status raises ``ValueError``."""

    def finish_firing(self, firing_id: int, status: str, **changes: Any) -> bool:
        """Give an active firing its final ``status`` and ``ended_at`` (a firing that has
        one already keeps it); return whether it changed."""
        return self.update_firing(
            firing_id, only_if=FiringStatus.active(), status=status, ended_at=utcnow(), **changes
        )

    @abstractmethod
    def get_firing(self, firing_id: int) -> FiringRecord:
        """The firing with this id; :class:`~ctloop.errors.NotFoundError` if none."""

    @abstractmethod
    def list_firings(
        self,
        *,
        trigger: str | None = None,
        statuses: Collection[str] | None = None,
        limit: int | None = None,
    ) -> list[FiringRecord]:
        """Firings, newest first, optionally of one trigger and in some statuses."""


#: the fields of a firing that :meth:`TriggerStore.update_firing` may change
FIRING_CHANGES = frozenset(
    {"status", "reason", "run_id", "cause_artifact_id", "details", "ended_at"}
)


def check_firing_changes(changes: Mapping[str, Any]) -> None:
    """Refuse changes of a firing's other fields, and unknown statuses, with a
    ``ValueError`` that names them."""
    unknown = sorted(set(changes) - FIRING_CHANGES)
    if unknown:
        raise ValueError(
            f"cannot update trigger firing field(s) {', '.join(map(repr, unknown))}; the "
            f"fields that can change are {', '.join(sorted(FIRING_CHANGES))}"
        )
    status = changes.get("status", FiringStatus.CLAIMED)
    if status not in set(FiringStatus):
        raise ValueError(
            f"trigger firing status {status!r} is unknown; use one of {', '.join(FiringStatus)}"
        )


def cursor_moved(state: TriggerStateRecord, expected_cursor: dict[str, Any] | None) -> bool:
    """Whether a compare-and-set of the cursor fails: ``expected_cursor`` was given
    (``None``: no cursor yet) and the cursor of ``state`` is another."""
    return expected_cursor is not _UNSET and state.cursor != (expected_cursor or {})


def evaluation_changes(checked_at: datetime, cursor: dict[str, Any] | None) -> dict[str, Any]:
    """The fields of a trigger's state that an evaluation at ``checked_at`` sets."""
    changes: dict[str, Any] = {"last_checked_at": checked_at}
    if cursor is not None:
        changes["cursor"] = cursor
    return changes


def claimed_changes(
    claim: FiringClaim,
    now: datetime,
    cooldown_until: datetime | None,
    new_cursor: dict[str, Any] | None,
) -> dict[str, Any]:
    """The fields of a trigger's state that claiming ``claim`` at ``now`` sets: an active
    firing is its ``last_fired_at``; a cooldown and a cursor when given."""
    changes = evaluation_changes(now, new_cursor)
    if claim.status in FiringStatus.active():
        changes["last_fired_at"] = now
    if cooldown_until is not None:
        changes["cooldown_until"] = cooldown_until
    return changes


@dataclass(frozen=True)
class ClaimTerms:
    """The conditions and the effects on the trigger's state of a claim (see
    :meth:`TriggerStore.claim`)."""

    expected_cursor: Any
    new_cursor: dict[str, Any] | None
    max_concurrent: int | None
    cooldown_until: datetime | None

    def refusal(
        self, state: TriggerStateRecord, fired: Callable[[], bool], active: Callable[[], int]
    ) -> ClaimResult | None:
        """The outcome of a claim refused against ``state`` (``fired``: whether the
        occasion fired already; ``active``: how many firings are active), or ``None``."""
        if cursor_moved(state, self.expected_cursor):
            return ClaimResult("moved")
        if fired():
            return ClaimResult("duplicate")
        if self.max_concurrent is not None and active() >= self.max_concurrent:
            return ClaimResult("busy")
        return None

    def changes(self, claim: FiringClaim, now: datetime) -> dict[str, Any]:
        """The fields of the trigger's state that claiming ``claim`` at ``now`` sets."""
        return claimed_changes(claim, now, self.cooldown_until, self.new_cursor)


def firing_values(claim: FiringClaim, now: datetime) -> dict[str, Any]:
    """The fields, but its id, of the firing that claiming ``claim`` at ``now`` adds: no
    run yet, and ended at once unless it is active (a skipped occasion)."""
    values = {f.name: getattr(claim, f.name) for f in fields(claim)}
    ended = None if claim.status in FiringStatus.active() else now
    return dict(values, run_id=None, fired_at=now, ended_at=ended)


def missing_firing(firing_id: int) -> NotFoundError:
    """The error for a firing id that is not there."""
    return NotFoundError(
        f"trigger firing {firing_id} does not exist; list firings with `ctloop triggers history`"
    )


class SqlTriggerStore(SqlTransactions, TriggerStore):
    """Trigger state and firings in the metadata database at ``url``.

    >>> SqlTriggerStore("sqlite://").list_firings()
    []
    """

    # -- state ------------------------------------------------------------------------
    def get_state(self, name: str) -> TriggerStateRecord | None:
        """The state of trigger ``name``, ``None`` before its first evaluation."""
        return self._read(lambda conn: _read_state(conn, name))

    def list_states(self) -> list[TriggerStateRecord]:
        """Every trigger's state, by name."""
        stmt = select(TRIGGER_STATE).order_by(TRIGGER_STATE.c.name)
        return self._read(lambda conn: [_state(r) for r in conn.execute(stmt).mappings()])

    def _save_state(
        self, name: str, pipeline: str, kind: str, changes: dict[str, Any], expected_cursor: Any
    ) -> bool:
        def work(conn: Connection) -> bool:
            current = _lock_state(conn, name, pipeline, kind)
            if cursor_moved(current, expected_cursor):
                return False
            _update_state(conn, name, changes)
            return True

        return self._write(work)

    # -- firings ----------------------------------------------------------------------
    def _claim(self, claim: FiringClaim, terms: ClaimTerms) -> ClaimResult:
        """Claim in one transaction (see the module docstring)."""

        def work(conn: Connection) -> ClaimResult:
            state = _lock_state(conn, claim.trigger, claim.pipeline, claim.kind)
            refused = terms.refusal(
                state,
                lambda: _find_firing(conn, claim.trigger, claim.fire_key) is not None,
                lambda: _count_active(conn, claim.trigger),
            )
            if refused is not None:
                return refused
            now = utcnow()
            firing_id = _insert_firing(conn, claim, now)
            _update_state(conn, claim.trigger, terms.changes(claim, now))
            return ClaimResult("claimed", _read_firing(conn, firing_id))

        return self._write(work)

    def update_firing(
        self, firing_id: int, *, only_if: Collection[str] | None = None, **changes: Any
    ) -> bool:
        """Change columns of a firing (``status``, ``run_id``, ``details``…), only while its
        status is one of ``only_if`` when given; return whether it changed."""
        check_firing_changes(changes)
        stmt = update(TRIGGER_FIRINGS).where(TRIGGER_FIRINGS.c.id == firing_id)
        if only_if is not None:
            stmt = stmt.where(TRIGGER_FIRINGS.c.status.in_(sorted(only_if)))
        stmt = stmt.values(**changes)
        return bool(self._write(lambda conn: conn.execute(stmt).rowcount))

    def get_firing(self, firing_id: int) -> FiringRecord:
        """The firing with this id; :class:`~ctloop.errors.NotFoundError` if none."""
        found = self._read(lambda conn: _read_firing(conn, firing_id))
        if found is None:
            raise missing_firing(firing_id)
        return found

    def list_firings(
        self,
        *,
        trigger: str | None = None,
        statuses: Collection[str] | None = None,
        limit: int | None = None,
    ) -> list[FiringRecord]:
        """Firings, newest first, optionally of one trigger and in some statuses."""
        stmt = select(TRIGGER_FIRINGS).order_by(TRIGGER_FIRINGS.c.id.desc())
        stmt = where_equal(stmt, TRIGGER_FIRINGS, given(trigger=trigger))
        if statuses is not None:
            stmt = stmt.where(TRIGGER_FIRINGS.c.status.in_(sorted(statuses)))
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._read(lambda conn: [_firing(r) for r in conn.execute(stmt).mappings()])


# -- queries ---------------------------------------------------------------------------
def _read_state(conn: Connection, name: str) -> TriggerStateRecord | None:
    row = conn.execute(select(TRIGGER_STATE).where(TRIGGER_STATE.c.name == name)).mappings().first()
    return _state(row) if row is not None else None


def _lock_state(conn: Connection, name: str, pipeline: str, kind: str) -> TriggerStateRecord:
    """The state row of ``name`` (created when missing), locked for this transaction."""
    stmt = select(TRIGGER_STATE).where(TRIGGER_STATE.c.name == name).with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        now = utcnow()
        values = {"name": name, "pipeline": pipeline, "kind": kind, "cursor": {}}
        # a concurrent insert of the same name raises IntegrityError: the transaction is
        # retried and then finds the row
        conn.execute(insert(TRIGGER_STATE).values(**values, updated_at=now))
        row = conn.execute(stmt).mappings().one()
    return _state(row)


def _update_state(conn: Connection, name: str, changes: Mapping[str, Any]) -> None:
    conn.execute(
        update(TRIGGER_STATE)
        .where(TRIGGER_STATE.c.name == name)
        .values(**changes, updated_at=utcnow())
    )


def _find_firing(conn: Connection, trigger: str, fire_key: str) -> int | None:
    stmt = select(TRIGGER_FIRINGS.c.id).where(
        TRIGGER_FIRINGS.c.trigger == trigger, TRIGGER_FIRINGS.c.fire_key == fire_key
    )
    return conn.execute(stmt).scalar()


def _count_active(conn: Connection, trigger: str) -> int:
    stmt = select(func.count()).where(
        TRIGGER_FIRINGS.c.trigger == trigger,
        TRIGGER_FIRINGS.c.status.in_(sorted(FiringStatus.active())),
    )
    return int(conn.execute(stmt).scalar() or 0)


def _insert_firing(conn: Connection, claim: FiringClaim, now: datetime) -> int:
    stmt = insert(TRIGGER_FIRINGS).values(firing_values(claim, now))
    return int(conn.execute(stmt.returning(TRIGGER_FIRINGS.c.id)).scalar_one())


def _read_firing(conn: Connection, firing_id: int) -> FiringRecord | None:
    stmt = select(TRIGGER_FIRINGS).where(TRIGGER_FIRINGS.c.id == firing_id)
    row = conn.execute(stmt).mappings().first()
    return _firing(row) if row is not None else None


def _state(row: RowMapping) -> TriggerStateRecord:
    return TriggerStateRecord(**{**dict(row), "cursor": dict(row["cursor"] or {})})


def _firing(row: RowMapping) -> FiringRecord:
    return FiringRecord(**{**dict(row), "details": dict(row["details"] or {})})
