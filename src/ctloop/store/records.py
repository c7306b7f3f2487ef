"""Immutable metadata records: the one metadata model of ctloop.

Inspired by ML Metadata: an :class:`ArtifactRecord` is a typed, content-addressed value;
a :class:`RunRecord` is one pipeline run; an :class:`ExecutionRecord` is one step of a run;
an :class:`EventRecord` links an execution to an artifact it read (``input``) or wrote
(``output``). Lineage is a walk over events. Params, metrics and tags hang off a run and
optionally one of its executions. A :class:`DataVersionRecord` names a snapshot artifact.

Times are timezone-aware UTC datetimes. JSON-valued fields hold plain JSON types.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

# re-exported, so that code importing the statuses from here keeps working
from ctloop.store.statuses import ExecutionStatus as ExecutionStatus
from ctloop.store.statuses import RunStatus as RunStatus

EventKind = Literal["input", "output"]
Trigger = Literal[
    "manual", "schedule", "new-data", "drift", "performance", "ci", "resume", "backtest"
]


def new_id() -> str:
    """A new random identifier (32 hex characters)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class FileEntry:
    """One file of an artifact: its path inside the artifact, sha256 digest and size."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True)
class ArtifactRecord:
    """A typed value stored in the artifact store.

    ``digest`` is the sha256 of the artifact's manifest (its file list), so two
    artifacts with the same files have the same digest. ``files`` lists the blobs.
    ``uri`` is where the manifest lies in the artifact store.
    """

    id: str
    type: str
    materializer: str
    materializer_version: str
    digest: str
    uri: str
    size: int
    files: tuple[FileEntry, ...]
    properties: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class RunRecord:
    """One pipeline run; ``status`` is a :class:`~ctloop.store.statuses.RunStatus`."""

    id: str
    pipeline: str
    pipeline_version: str
    reference: str
    parameters: dict[str, Any]
    trigger: str
    user: str
    host: str
    pid: int
    status: str
    started_at: datetime
    ended_at: datetime | None = None
    heartbeat_at: datetime | None = None
    git_commit: str | None = None
    executor: str = "local"
    error: str | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end, ``None`` while running."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class ExecutionRecord:
    """One step of a run (one attempt: a resumed step gets a new execution); ``status``
    is an :class:`~ctloop.store.statuses.ExecutionStatus`."""

    id: str
    run_id: str
    step: str
    function: str
    code_hash: str
    cache_key: str
    status: str
    parameters: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    heartbeat_at: datetime | None = None
    error: str | None = None
    log_uri: str | None = None
    cached_from: str | None = None
    attempt: int = 1

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end, ``None`` while not ended."""
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class EventRecord:
    """An execution read (``input``) or wrote (``output``) an artifact under ``name``."""

    execution_id: str
    artifact_id: str
    kind: str
    name: str


@dataclass(frozen=True)
class ParamRecord:
    """A parameter logged on a run, optionally by one execution."""

    run_id: str
    key: str
    value: str
    execution_id: str | None = None


@dataclass(frozen=True)
class MetricRecord:
    """A metric value; ``step`` orders values of the same key (epochs, rounds)."""

    run_id: str
    key: str
    value: float
    step: int | None = None
    execution_id: str | None = None
    timestamp: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class TagRecord:
    """A free-form tag on a run, optionally on one execution."""

    run_id: str
    key: str
    value: str
    execution_id: str | None = None


@dataclass(frozen=True)
class DataVersionRecord:
    """Version ``version`` (1, 2, …) of the named data set, a snapshot artifact."""

    name: str
    version: int
    artifact_id: str
    source: str
    created_at: datetime = field(default_factory=utcnow)
    message: str = ""
