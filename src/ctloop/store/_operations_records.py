"""Records of operations: deployment changes, logged batches and alerts.

They are frozen dataclasses read from the tables of :mod:`ctloop.store._schema`
(``deployments``, ``prediction_logs``, ``feedback_logs``, ``alerts``); times are
timezone-aware UTC.

>>> from datetime import UTC, datetime
>>> now = datetime(2026, 1, 1, tzinfo=UTC)
>>> LogBatchRecord(1, "flights", 3, "flights", "a1", 10, now, now, now).rows
10
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["AlertRecord", "DeploymentRecord", "LogBatchRecord"]


@dataclass(frozen=True)
class DeploymentRecord:
    """One change of a deployment: who (``created_by`` on ``host``), when, why, and
    the whole routing ``state`` after the change.

    >>> record.action, record.state["canary"]["traffic"]  # doctest: +SKIP
    ('canary', 10.0)
    """

    id: int
    name: str
    model: str
    action: str
    state: dict[str, Any] = field(hash=False)
    reason: str
    created_at: datetime
    created_by: str
    host: str


@dataclass(frozen=True)
class LogBatchRecord:
    """One stored batch of logged predictions or feedback labels: the Parquet artifact
    ``artifact_id`` with ``rows`` rows stamped from ``first_at`` to ``last_at`` (when
    they were logged) and about events from ``first_event_at`` to ``last_event_at`` (the
    event time the client sent, else the log time; ``None`` for batches logged before
    event times were kept). Feedback batches have no ``version`` and no ``deployment``.

    >>> batch.artifact_id, batch.rows  # doctest: +SKIP
    ('3f9c…', 1000)
    """

    id: int
    model: str | None
    version: int | None
    deployment: str | None
    artifact_id: str
    rows: int
    first_at: datetime
    last_at: datetime
    created_at: datetime
    first_event_at: datetime | None = None
    last_event_at: datetime | None = None


@dataclass(frozen=True)
class AlertRecord:
    """An alert: its ``source`` (e.g. ``monitor``), ``subject`` (e.g. ``flights``),
    ``severity``, ``cause`` (a sentence), the numbers in ``details``, the report
    artifact, and ``delivery``: sink name → ``{"status", "attempts", "last_error",
    "updated_at"}``.

    >>> alert.delivery["slack"]["status"]  # doctest: +SKIP
    'sent'
    """

    id: int
    source: str
    subject: str
    severity: str
    cause: str
    dedup_key: str
    details: dict[str, Any] = field(hash=False)
    report_artifact_id: str | None
    delivery: dict[str, Any] = field(hash=False)
    created_at: datetime
