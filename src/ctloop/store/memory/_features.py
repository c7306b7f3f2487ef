"""Feature store definitions in memory, held to the contract of the SQL registry."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Sequence

from ctloop.store._features import (
    KINDS,
    DefinitionDraft,
    FeatureDefinitionRecord,
    FeatureRegistry,
    MaterializationRecord,
    changed,
)

__all__ = ["MemoryFeatureRegistry"]


class MemoryFeatureRegistry(FeatureRegistry):
    """Feature definitions in a list behind a lock.

    >>> MemoryFeatureRegistry().list()
    []
    """

    def __init__(self) -> None:
        self._versions: list[FeatureDefinitionRecord] = []
        self._materializations: list[MaterializationRecord] = []
        self._lock = threading.Lock()

    def apply(
        self, drafts: Sequence[DefinitionDraft], *, applied_by: str = ""
    ) -> builtins.list[FeatureDefinitionRecord]:
        """Record a new version of each changed draft, all at once."""
        with self._lock:
            made = changed(list(drafts), {(r.kind, r.name): r for r in self._latest()}, applied_by)
            self._versions.extend(made)
        return made

    def history(self, name: str, kind: str | None = None) -> builtins.list[FeatureDefinitionRecord]:
        """Every version of ``name``, oldest first."""
        with self._lock:
            found = [r for r in self._versions if r.name == name]
        kinds = {r.kind for r in found}
        wanted = kind or next((k for k in KINDS if k in kinds), "")
        return sorted((r for r in found if r.kind == wanted), key=lambda r: r.version)

    def list(self) -> list[FeatureDefinitionRecord]:
        """The latest version of every definition, by kind then name."""
        with self._lock:
            latest = self._latest()
        return sorted(latest, key=lambda r: (KINDS.index(r.kind), r.name))

    def revision(self) -> int:
        """How many versions were applied."""
        with self._lock:
            return len(self._versions)

    def _add_materialization(self, record: MaterializationRecord) -> None:
        with self._lock:
            self._materializations.append(record)

    def materializations(self, view: str | None = None) -> builtins.list[MaterializationRecord]:
        """The materializations of ``view`` (or all), oldest first."""
        with self._lock:
            return [r for r in self._materializations if view is None or r.view == view]

    def _latest(self) -> builtins.list[FeatureDefinitionRecord]:
        newest: dict[tuple[str, str], FeatureDefinitionRecord] = {}
        for record in self._versions:
            newest[(record.kind, record.name)] = record
        return list(newest.values())
