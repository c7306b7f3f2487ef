"""How records go into and come out of the in-memory stores, and what those stores say
where a database's constraint would refuse a write.

A stored record is what a database would give back: times in UTC, JSON fields as JSON
returns them; a record handed out carries fresh copies of its JSON fields, so that no
caller can change the store by changing a dict.

>>> rows_of({("r1", "", "team"): "ml", ("r2", "", "team"): "ops"}, "r1")
[('', 'team', 'ml')]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar

from ctloop.errors import IntegrityError, StoreError
from ctloop.store._metadata_rules import PREFIX_MATCHES, check_prefix, prefix_not_found
from ctloop.store._schema import to_utc
from ctloop.store.records import ArtifactRecord, MetricRecord

__all__ = [
    "Keyed",
    "by_id_or_prefix",
    "converted",
    "copied",
    "json_copy",
    "kept_artifacts",
    "missing_owner",
    "refuse_duplicate",
    "rows_of",
    "stored",
]

R = TypeVar("R")
#: params or tags: (run, execution or "", key) -> value
Keyed = dict[tuple[str, str, str], str]
#: the fields of records and changes that hold times
TIMES = frozenset(
    {"started_at", "ended_at", "heartbeat_at", "created_at", "timestamp", "fired_at"}
    | {"last_checked_at", "last_fired_at", "cooldown_until"}
)


def json_copy(value: Any) -> Any:
    """``value`` as a database's JSON column gives it back: a fresh copy, tuples as lists,
    keys as strings (a value JSON cannot hold raises ``TypeError``).

    >>> json_copy({"layers": (8, 4), 1: None})
    {'layers': [8, 4], '1': None}
    """
    return json.loads(json.dumps(value))


def stored(record: R) -> R:
    """``record`` as the store keeps it: times in UTC (a naive one raises ``ValueError``),
    JSON fields copied, metric values as floats."""
    changes = converted({name: getattr(record, name) for name in TIMES if hasattr(record, name)})
    for name in ("parameters", "properties"):
        if hasattr(record, name):
            changes[name] = json_copy(getattr(record, name))
    if isinstance(record, ArtifactRecord):
        changes["files"] = tuple(record.files)
    if isinstance(record, MetricRecord):
        changes["value"] = float(record.value)
    return replace(record, **changes)  # type: ignore[type-var]


def converted(changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` with its times in UTC."""
    return {
        key: to_utc(value) if key in TIMES and value is not None else value
        for key, value in changes.items()
    }


def copied(record: R) -> R:
    """``record`` with fresh copies of its JSON fields, so a caller cannot change the store."""
    for name in ("parameters", "properties"):
        if hasattr(record, name):
            return replace(record, **{name: json_copy(getattr(record, name))})  # type: ignore[type-var]
    return record


def by_id_or_prefix(records: Mapping[str, R], id_or_prefix: str, what: str) -> R:
    """The record whose id is ``id_or_prefix`` or the only one that starts with it."""
    found = records.get(id_or_prefix)
    if found is not None:
        return found
    check_prefix(id_or_prefix, what)
    matches = sorted(i for i in records if i.startswith(id_or_prefix))[:PREFIX_MATCHES]
    if len(matches) == 1:
        return records[matches[0]]
    raise prefix_not_found(what, id_or_prefix, matches)


def refuse_duplicate(records: Mapping[str, object], record_id: str, what: str) -> None:
    """Refuse a second record with one id, as a primary key does."""
    if record_id in records:
        raise IntegrityError(
            f"{what} {record_id!r} exists already; a new {what} needs a new id "
            "(ctloop.store.records.new_id())"
        )


def rows_of(keyed: Keyed, run_id: str) -> list[tuple[str, str, str]]:
    """``(execution or "", key, value)`` of the params or tags of one run."""
    return [
        (execution, key, value) for (run, execution, key), value in keyed.items() if run == run_id
    ]


def kept_artifacts(kept: dict[str, str]) -> StoreError:
    """The error for a delete of artifacts that other records keep (id → by what)."""
    names = ", ".join(f"{artifact_id} ({by})" for artifact_id, by in list(kept.items())[:5])
    return StoreError(
        f"artifact(s) {names} are kept by other records and cannot be deleted; leave them "
        "out (pinned_artifact_ids lists the artifacts to keep)"
    )


def missing_owner(record: str, owner: str, owner_id: str) -> IntegrityError:
    """The error for a record that names a run or an execution which is not stored, as a
    foreign key refuses it."""
    return IntegrityError(
        f"{record} names {owner} {owner_id!r}, which does not exist; create the {owner} "
        f"first (create_{owner})"
    )
