"""Versioned feature store definitions (table ``feature_definitions`` of migration 0005).

A definition is a kind (``entity``, ``feature_view``, ``on_demand``, ``feature_service``),
a name and a JSON ``spec``. Applying a set of definitions records a new version of each
one whose spec changed, and nothing for the others, all in one transaction; readers see
the new versions at once (nothing is cached).

Each materialization of a feature view into the online store is recorded too (table
``feature_materializations`` of migration 0006); the latest ``end`` of a view is its
watermark, where the next incremental materialization starts.

>>> store = SqlFeatureRegistry("sqlite://")
>>> [d.version for d in store.apply([DefinitionDraft("entity", "origin", {"join_keys": ["origin"]})])]
[1]
>>> store.apply([DefinitionDraft("entity", "origin", {"join_keys": ["origin"]})])
[]
>>> store.get("origin").version
1
"""

from __future__ import annotations

import builtins
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.engine import RowMapping

from ctloop.errors import NotFoundError
from ctloop.store._schema import FEATURE_DEFINITIONS, FEATURE_MATERIALIZATIONS, to_utc
from ctloop.store._transactions import SqlTransactions
from ctloop.store.records import utcnow

__all__ = [
    "KINDS",
    "DefinitionDraft",
    "FeatureDefinitionRecord",
    "FeatureRegistry",
    "MaterializationRecord",
    "SqlFeatureRegistry",
    "spec_digest",
]

#: the kinds of definition, in the order ``ctloop features list`` shows them
KINDS = ("entity", "feature_view", "on_demand", "feature_service")


def spec_digest(spec: dict[str, Any]) -> str:
    """The SHA-256 (hex) of ``spec`` as canonical JSON: equal specs, equal digests.

    >>> spec_digest({"a": 1, "b": 2}) == spec_digest({"b": 2, "a": 1})
    True
    """
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DefinitionDraft:
    """A definition to apply: its kind, name and spec."""

    kind: str
    name: str
    spec: dict[str, Any]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"definition kind {self.kind!r} is unknown; use one of {', '.join(KINDS)}"
            )


@dataclass(frozen=True)
class FeatureDefinitionRecord:
    """One stored version of a definition."""

    kind: str
    name: str
    version: int
    digest: str
    spec: dict[str, Any]
    applied_at: datetime
    applied_by: str


@dataclass(frozen=True)
class MaterializationRecord:
    """One materialization of the feature view ``view``: the event times ``(start, end]``
    it read (``start`` ``None``: from the beginning), the latest rows per key it found
    (``rows_read``) and how many of them changed the online store (``rows_written``)."""

    view: str
    start: datetime | None
    end: datetime
    rows_read: int
    rows_written: int
    at: datetime
    by: str = ""


def missing_definition(name: str, version: int | None = None) -> NotFoundError:
    """The error for a definition (or one version of it) that is not there."""
    what = (
        f"version {version} of feature definition {name!r}"
        if version
        else f"feature definition {name!r}"
    )
    return NotFoundError(f"{what} does not exist; list definitions with `ctloop features list`")


class FeatureRegistry(ABC):
    """The feature store definitions of a workspace, every version kept.

    Errors: :meth:`get` of a name (or version) that is not there raises
    :class:`~ctloop.errors.NotFoundError`; a draft of an unknown kind raises
    ``ValueError`` before anything is written; an unreachable backend raises
    :class:`~ctloop.errors.StoreUnavailableError`. :meth:`apply` writes all or nothing.
    Names are unique per kind; :meth:`get` looks a name up in :data:`KINDS` order.
    """

    @abstractmethod
    def apply(
        self, drafts: Sequence[DefinitionDraft], *, applied_by: str = ""
    ) -> list[FeatureDefinitionRecord]:
        """Record a new version of each draft whose spec differs from its latest one;
        return the new versions (an empty list when nothing changed)."""

    @abstractmethod
    def history(self, name: str, kind: str | None = None) -> list[FeatureDefinitionRecord]:
        """Every version of the definition ``name``, oldest first (empty if none)."""

    @abstractmethod
    def list(self) -> list[FeatureDefinitionRecord]:
        """The latest version of every definition, by kind then name."""

    @abstractmethod
    def revision(self) -> int:
        """A number that grows with every version applied (``0`` before any): readers
        that keep rebuilt definitions check it to see a change at once, in one small
        query."""

    def get(
        self, name: str, version: int | None = None, kind: str | None = None
    ) -> FeatureDefinitionRecord:
        """The latest (or the given) version of the definition ``name``."""
        versions = self.history(name, kind)
        if version is not None:
            versions = [v for v in versions if v.version == version]
        if not versions:
            raise missing_definition(name, version)
        return versions[-1]

    def record_materialization(
        self,
        view: str,
        *,
        start: datetime | None,
        end: datetime,
        rows_read: int,
        rows_written: int,
        by: str = "",
    ) -> MaterializationRecord:
        """Record a materialization that has been written to the online store; its
        ``end`` becomes the view's watermark if it is later than the one before. Times
        must be timezone-aware (``ValueError`` otherwise); they are kept in UTC."""
        record = MaterializationRecord(
            view, None if start is None else to_utc(start), to_utc(end),
            rows_read, rows_written, utcnow(), by,
        )  # fmt: skip
        self._add_materialization(record)
        return record

    @abstractmethod
    def _add_materialization(self, record: MaterializationRecord) -> None:
        """Store ``record`` (its times in UTC)."""

    @abstractmethod
    def materializations(self, view: str | None = None) -> builtins.list[MaterializationRecord]:
        """The materializations of ``view`` (of every view if ``None``), oldest first."""

    def watermark(self, view: str) -> datetime | None:
        """The latest ``end`` materialized for ``view``, or ``None`` if it never was."""
        ends = [r.end for r in self.materializations(view)]
        return max(ends) if ends else None


def changed(
    drafts: Sequence[DefinitionDraft],
    latest: dict[tuple[str, str], FeatureDefinitionRecord],
    applied_by: str,
) -> list[FeatureDefinitionRecord]:
    """The new version records for the drafts whose digest differs from ``latest``."""
    at, made = utcnow(), []
    for draft in drafts:
        digest, before = spec_digest(draft.spec), latest.get((draft.kind, draft.name))
        if before is not None and before.digest == digest:
            continue
        version = 1 if before is None else before.version + 1
        made.append(
            FeatureDefinitionRecord(
                draft.kind, draft.name, version, digest, draft.spec, at, applied_by
            )
        )
    return made


class SqlFeatureRegistry(SqlTransactions, FeatureRegistry):
    """Feature definitions in the metadata database at ``url``.

    >>> SqlFeatureRegistry("sqlite://").list()
    []
    """

    retry_integrity = True  # two appliers taking one version number: the retry reads again

    def apply(
        self, drafts: Sequence[DefinitionDraft], *, applied_by: str = ""
    ) -> list[FeatureDefinitionRecord]:
        """Record a new version of each changed draft, all in one transaction."""
        drafts = list(drafts)

        def work(conn: Connection) -> list[FeatureDefinitionRecord]:
            made = changed(drafts, {(r.kind, r.name): r for r in _latest(conn)}, applied_by)
            if made:
                conn.execute(insert(FEATURE_DEFINITIONS), [r.__dict__ for r in made])
            return made

        return self._write(work)

    def history(self, name: str, kind: str | None = None) -> list[FeatureDefinitionRecord]:
        """Every version of ``name``, oldest first."""
        table = FEATURE_DEFINITIONS
        stmt = select(*_COLUMNS).where(table.c.name == name)
        stmt = stmt.where(table.c.kind == (kind or _first_kind(self, name))).order_by(
            table.c.version
        )
        return self._read(lambda conn: [_record(r) for r in conn.execute(stmt).mappings()])

    def list(self) -> list[FeatureDefinitionRecord]:
        """The latest version of every definition, by kind then name."""
        return sorted(self._read(_latest), key=lambda r: (KINDS.index(r.kind), r.name))

    def revision(self) -> int:
        """The highest row id of the definitions table (rows are only ever added)."""
        return int(self._read(lambda conn: conn.execute(_REVISION).scalar_one()))

    def _add_materialization(self, record: MaterializationRecord) -> None:
        self._write(lambda conn: conn.execute(insert(FEATURE_MATERIALIZATIONS), [record.__dict__]))

    def materializations(self, view: str | None = None) -> builtins.list[MaterializationRecord]:
        """The materializations of ``view`` (or all), oldest first."""
        table = FEATURE_MATERIALIZATIONS
        stmt = select(*[c for c in table.c if c.name != "id"]).order_by(table.c.id)
        if view is not None:
            stmt = stmt.where(table.c.view == view)
        return self._read(
            lambda conn: [MaterializationRecord(**dict(r)) for r in conn.execute(stmt).mappings()]
        )

    def watermark(self, view: str) -> datetime | None:
        """The latest ``end`` materialized for ``view`` (one query)."""
        table = FEATURE_MATERIALIZATIONS
        stmt = select(func.max(table.c.end)).where(table.c.view == view)
        value: datetime | None = self._read(lambda conn: conn.execute(stmt).scalar())
        return value


_COLUMNS = [c for c in FEATURE_DEFINITIONS.c if c.name != "id"]
# built once: online reads run it on every call
_REVISION = select(func.coalesce(func.max(FEATURE_DEFINITIONS.c.id), 0))


def _first_kind(store: SqlFeatureRegistry, name: str) -> str:
    kinds = {r.kind for r in store.list() if r.name == name}
    return next((k for k in KINDS if k in kinds), "")


def _latest(conn: Connection) -> list[FeatureDefinitionRecord]:
    table = FEATURE_DEFINITIONS
    newest = (
        select(table.c.kind, table.c.name, func.max(table.c.version).label("version"))
        .group_by(table.c.kind, table.c.name)
        .subquery()
    )
    stmt = select(*_COLUMNS).join(
        newest,
        (table.c.kind == newest.c.kind)
        & (table.c.name == newest.c.name)
        & (table.c.version == newest.c.version),
    )
    return [_record(r) for r in conn.execute(stmt).mappings()]


def _record(row: RowMapping) -> FeatureDefinitionRecord:
    return FeatureDefinitionRecord(**dict(row))
