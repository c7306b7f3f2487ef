"""What every metadata store checks, and the sentences it says no with.

The fields a run or an execution may change, how an id prefix resolves, and the errors
for what is not there: shared by the SQL store (:mod:`ctloop.store._sql`) and the
in-memory one (:mod:`ctloop.store.memory`), so that both answer a mistake with the same
words.

>>> check_prefix("abc", "run")
Traceback (most recent call last):
...
ctloop.errors.NotFoundError: run 'abc' does not exist; give the full id or a prefix of at least 4 characters
>>> prefix_not_found("run", "abcd", ["abcd1", "abcd2"]).args[0][:56]
"run id prefix 'abcd' is ambiguous: it matches abcd1, abc"
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from ctloop.errors import ConflictError, NotFoundError, StoreError
from ctloop.store.statuses import ExecutionStatus

__all__ = [
    "EXECUTION_CHANGES",
    "MIN_PREFIX",
    "PREFIX_MATCHES",
    "RUN_CHANGES",
    "check_changes",
    "check_latest_data_version",
    "check_prefix",
    "check_status",
    "completion_changes",
    "data_version_artifacts",
    "missing_artifacts",
    "missing_data_version",
    "missing_execution",
    "missing_record",
    "prefix_not_found",
]

#: the shortest id prefix a lookup accepts
MIN_PREFIX = 4
#: how many ids a prefix lookup reads at most (an ambiguous prefix names 10 of them)
PREFIX_MATCHES = 20
RUN_CHANGES = frozenset({"status", "ended_at", "heartbeat_at", "error", "pid", "host", "user"})
EXECUTION_CHANGES = frozenset(
    {"status", "started_at", "ended_at", "heartbeat_at", "error", "log_uri", "cache_key"}
    | {"cached_from"}
)


def check_status(status: str, allowed: type[StrEnum], what: str) -> None:
    """Refuse a status that is not a member of ``allowed`` with a ``ValueError`` that
    lists them."""
    if status not in set(allowed):
        raise ValueError(f"{what} status {status!r} is unknown; use one of {', '.join(allowed)}")


def check_changes(
    what: str,
    changes: dict[str, Any],
    allowed: frozenset[str],
    statuses: type[StrEnum],
) -> None:
    """Refuse updates of fields outside ``allowed`` (and unknown statuses)."""
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValueError(
            f"cannot update {what} field(s) {', '.join(unknown)}; the fields that can "
            f"change are {', '.join(sorted(allowed))}"
        )
    if "status" in changes:
        check_status(changes["status"], statuses, what)


def completion_changes(
    status: str,
    ended_at: Any,
    *,
    error: str | None,
    log_uri: str | None,
    cached_from: str | None,
) -> dict[str, Any]:
    """The checked fields that finishing an execution sets: ``status`` and ``ended_at``,
    and each optional one that is given."""
    changes: dict[str, Any] = {"status": status, "ended_at": ended_at}
    optional = {"error": error, "log_uri": log_uri, "cached_from": cached_from}
    changes.update({key: value for key, value in optional.items() if value is not None})
    check_changes("execution", changes, EXECUTION_CHANGES, ExecutionStatus)
    return changes


def check_prefix(id_or_prefix: str, what: str) -> None:
    """Refuse a prefix shorter than :data:`MIN_PREFIX` (the full id did not match)."""
    if len(id_or_prefix) < MIN_PREFIX:
        raise NotFoundError(
            f"{what} {id_or_prefix!r} does not exist; give the full id or a prefix of at "
            f"least {MIN_PREFIX} characters"
        )


def prefix_not_found(what: str, id_or_prefix: str, matches: Sequence[str]) -> NotFoundError:
    """The error for a prefix that matches no id, or several (``matches``, in id order)."""
    if not matches:
        listing = (
            "`ctloop runs list`" if what == "run" else f"`ctloop runs show RUN` for {what} ids"
        )
        return NotFoundError(f"no {what} id starts with {id_or_prefix!r}; see {listing}")
    candidates = ", ".join(matches[:10])
    return NotFoundError(
        f"{what} id prefix {id_or_prefix!r} is ambiguous: it matches {candidates}"
        f"{', …' if len(matches) > 10 else ''}; give more characters"
    )


def missing_record(what: str, record_id: str) -> NotFoundError:
    """The error for an update of a run or execution that does not exist."""
    return NotFoundError(f"{what} {record_id!r} does not exist; check the id")


def missing_execution(execution_id: str) -> NotFoundError:
    """The error for a lookup of an execution that does not exist."""
    return NotFoundError(
        f"execution {execution_id!r} does not exist; list a run's executions with "
        "`ctloop runs show RUN`"
    )


def missing_artifacts(missing: Iterable[str], needed_by: str) -> NotFoundError:
    """The error for records that name artifacts which are not stored."""
    return NotFoundError(
        f"artifact(s) {', '.join(missing)} needed by {needed_by} are not stored; put the "
        "artifacts first (put_artifacts, or pass them in the same complete_execution call)"
    )


def data_version_artifacts(kept: Iterable[tuple[str, str, int]]) -> StoreError:
    """The error for a delete of artifacts that are data versions: ``kept`` holds
    ``(artifact_id, name, version)`` of (at most five of) them."""
    names = ", ".join(f"{artifact_id} ({name} v{version})" for artifact_id, name, version in kept)
    return StoreError(
        f"artifact(s) {names} are data versions and cannot be deleted; leave them out "
        "(referenced_artifact_ids lists the artifacts to keep)"
    )


def check_latest_data_version(name: str, latest: int, expect_latest: int | None) -> None:
    """Refuse to add a version of ``name`` after ``latest`` when the caller expected the
    latest to be ``expect_latest`` (0: no version yet); ``None`` expects nothing.

    >>> check_latest_data_version("flights", 3, 2)
    Traceback (most recent call last):
    ...
    ctloop.errors.ConflictError: data set 'flights' is at version 3, not 2 as expected: another writer added a version meanwhile; read the latest version again and retry
    """
    if expect_latest is not None and latest != expect_latest:
        raise ConflictError(
            f"data set {name!r} is at version {latest}, not {expect_latest} as expected: "
            "another writer added a version meanwhile; read the latest version again and retry"
        )


def missing_data_version(name: str, version: int | None) -> NotFoundError:
    """The error for a data set without versions, or without version ``version``."""
    which = "no versions" if version is None else f"no version {version}"
    return NotFoundError(
        f"data set {name!r} has {which}; list versions with `ctloop data list` or "
        "add one with `ctloop data add`"
    )
