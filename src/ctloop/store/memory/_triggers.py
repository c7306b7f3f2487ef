"""In-memory trigger state and firings: the fake of
:class:`~ctloop.store._triggers.TriggerStore`, passing the same contract tests as the SQL
store.

One lock makes :meth:`MemoryTriggerStore.claim` atomic, as the SQL store's write
transaction does: of several threads claiming one occasion, one gets ``claimed`` and the
others ``duplicate`` (or ``moved``, when the cursor moved under them).

>>> store = MemoryTriggerStore()
>>> claim = FiringClaim("p/nightly", "p", "schedule", "slot:1", "cron")
>>> store.claim(claim).outcome, store.claim(claim).outcome
('claimed', 'duplicate')
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from ctloop.store._query import given, matching
from ctloop.store._schema import to_utc
from ctloop.store._triggers import (
    ClaimResult,
    ClaimTerms,
    FiringClaim,
    FiringRecord,
    TriggerStateRecord,
    TriggerStore,
    check_firing_changes,
    cursor_moved,
    firing_values,
    missing_firing,
)
from ctloop.store.memory._records import converted, json_copy
from ctloop.store.records import utcnow
from ctloop.store.statuses import FiringStatus

__all__ = ["MemoryTriggerStore"]


class MemoryTriggerStore(TriggerStore):
    """Trigger state and firings in dicts and a list behind one lock.

    >>> MemoryTriggerStore().list_firings()
    []
    """

    def __init__(self) -> None:
        self._states: dict[str, TriggerStateRecord] = {}
        self._firings: list[FiringRecord] = []  # firing ``id`` is its place + 1
        self._lock = threading.RLock()

    # -- state ------------------------------------------------------------------------
    def get_state(self, name: str) -> TriggerStateRecord | None:
        """The state of trigger ``name``, ``None`` before its first evaluation."""
        with self._lock:
            state = self._states.get(name)
        return None if state is None else _state_copy(state)

    def list_states(self) -> list[TriggerStateRecord]:
        """Every trigger's state, by name."""
        with self._lock:
            return [_state_copy(self._states[name]) for name in sorted(self._states)]

    def _save_state(
        self, name: str, pipeline: str, kind: str, changes: dict[str, Any], expected_cursor: Any
    ) -> bool:
        changes = converted(changes)
        if "cursor" in changes:
            changes["cursor"] = json_copy(changes["cursor"])
        with self._lock:
            current = self._state(name, pipeline, kind)
            if cursor_moved(current, expected_cursor):
                return False
            self._states[name] = replace(current, **changes, updated_at=utcnow())
        return True

    # -- firings ----------------------------------------------------------------------
    def _claim(self, claim: FiringClaim, terms: ClaimTerms) -> ClaimResult:
        """Claim under the lock (see :meth:`TriggerStore.claim`)."""
        cooldown = None if terms.cooldown_until is None else to_utc(terms.cooldown_until)
        cursor = None if terms.new_cursor is None else json_copy(terms.new_cursor)
        terms = replace(terms, new_cursor=cursor, cooldown_until=cooldown)
        details = json_copy(claim.details)
        with self._lock:
            state = self._state(claim.trigger, claim.pipeline, claim.kind)
            mine = [f for f in self._firings if f.trigger == claim.trigger]
            refused = terms.refusal(
                state,
                lambda: any(f.fire_key == claim.fire_key for f in mine),
                lambda: sum(f.status in FiringStatus.active() for f in mine),
            )
            if refused is not None:
                return refused
            now = utcnow()
            values = dict(firing_values(claim, now), details=details)
            firing = FiringRecord(id=len(self._firings) + 1, **values)
            self._firings.append(firing)
            changes = terms.changes(claim, now)
            self._states[claim.trigger] = replace(state, **changes, updated_at=utcnow())
        return ClaimResult("claimed", _firing_copy(firing))

    def update_firing(
        self, firing_id: int, *, only_if: Collection[str] | None = None, **changes: Any
    ) -> bool:
        """Change fields of a firing (``status``, ``run_id``, ``details``…), only while its
        status is one of ``only_if`` when given; return whether it changed."""
        check_firing_changes(changes)
        values = converted(changes)
        if "details" in values:
            values["details"] = json_copy(values["details"])
        with self._lock:
            if not 1 <= firing_id <= len(self._firings):
                return False
            firing = self._firings[firing_id - 1]
            if only_if is not None and firing.status not in only_if:
                return False
            self._firings[firing_id - 1] = replace(firing, **values)
        return True

    def get_firing(self, firing_id: int) -> FiringRecord:
        """The firing with this id; :class:`~ctloop.errors.NotFoundError` if none."""
        with self._lock:
            if not 1 <= firing_id <= len(self._firings):
                raise missing_firing(firing_id)
            return _firing_copy(self._firings[firing_id - 1])

    def list_firings(
        self,
        *,
        trigger: str | None = None,
        statuses: Collection[str] | None = None,
        limit: int | None = None,
    ) -> list[FiringRecord]:
        """Firings, newest first, optionally of one trigger and in some statuses."""
        with self._lock:
            found = [
                f
                for f in matching(reversed(self._firings), given(trigger=trigger))
                if statuses is None or f.status in statuses
            ]
        return [_firing_copy(f) for f in found[:limit]]

    # -- what the metadata store asks (see MetadataReferences) --------------------------
    def referenced_artifacts(self) -> dict[str, str]:
        """Artifact id → the first firing it caused (garbage collection keeps it)."""
        kept: dict[str, str] = {}
        with self._lock:
            for firing in self._firings:
                if firing.cause_artifact_id is not None:
                    kept.setdefault(firing.cause_artifact_id, f"the cause of firing {firing.id}")
        return kept

    def referenced_runs(self) -> set[str]:
        """None kept: a firing's run may be deleted (the firing then names no run)."""
        return set()

    def forget_runs(self, run_ids: set[str], execution_ids: set[str]) -> None:
        """Deleted runs: the firings that started them name no run, as in the database."""
        with self._lock:
            for index, firing in enumerate(self._firings):
                if firing.run_id in run_ids:
                    self._firings[index] = replace(firing, run_id=None)

    def _state(self, name: str, pipeline: str, kind: str) -> TriggerStateRecord:
        """The state of ``name``, created when missing (call under the lock)."""
        state = self._states.get(name)
        if state is None:
            state = TriggerStateRecord(name, pipeline, kind, {}, None, None, None, utcnow())
            self._states[name] = state
        return state


def _state_copy(state: TriggerStateRecord) -> TriggerStateRecord:
    return replace(state, cursor=json_copy(state.cursor))


def _firing_copy(firing: FiringRecord) -> FiringRecord:
    return replace(firing, details=json_copy(firing.details))
