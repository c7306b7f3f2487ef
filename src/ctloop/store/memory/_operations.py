"""In-memory deployments, log batches and alerts: the fakes of
:mod:`ctloop.store._operations`, passing the same contract tests as the SQL stores."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ctloop.errors import IntegrityError
from ctloop.store._operations import (
    AlertStore,
    DeploymentStore,
    LogQuery,
    LogStore,
    When,
    missing_alert,
    to_utc,
)
from ctloop.store._operations_records import AlertRecord, DeploymentRecord, LogBatchRecord
from ctloop.store._query import given, matching
from ctloop.store.records import utcnow

__all__ = ["MemoryAlertStore", "MemoryDeploymentStore", "MemoryLogStore"]


class MemoryDeploymentStore(DeploymentStore):
    """Deployment changes in a list.

    >>> store = MemoryDeploymentStore()
    >>> store.record(name="f", model="f", action="deploy", state={}, reason="").id
    1
    """

    def __init__(self) -> None:
        self._records: list[DeploymentRecord] = []
        self._lock = threading.Lock()

    def _add_deployment(self, values: dict[str, Any]) -> DeploymentRecord:
        with self._lock:
            record = DeploymentRecord(id=len(self._records) + 1, **values)
            self._records.append(record)
        return record

    def history(self, name: str, limit: int | None = None) -> list[DeploymentRecord]:
        with self._lock:
            found = [r for r in self._records if r.name == name]
        if limit is not None:
            found = found[max(len(found) - limit, 0) :]
        return found

    def list(self) -> list[DeploymentRecord]:
        with self._lock:
            latest = {r.name: r for r in self._records}
        return [latest[name] for name in sorted(latest)]


class MemoryLogStore(LogStore):
    """Log batches in lists; ``artifact_exists`` says whether a batch's artifact is
    registered (the metadata store's artifacts), as the database's foreign key does."""

    def __init__(self, artifact_exists: Callable[[str], bool]) -> None:
        self._artifact_exists = artifact_exists
        self._predictions: list[LogBatchRecord] = []
        self._feedback: list[LogBatchRecord] = []
        self._lock = threading.Lock()

    def _add_batch(self, log: str, values: dict[str, Any]) -> LogBatchRecord:
        if not self._artifact_exists(values["artifact_id"]):
            raise IntegrityError(
                f"log batch names artifact {values['artifact_id']!r}, which is not "
                "registered; store the batch's Dataset artifact first"
            )
        into = self._predictions if log == "predictions" else self._feedback
        with self._lock:
            record = LogBatchRecord(id=len(into) + 1, **values)
            into.append(record)
        return record

    def _batches(self, log: str, query: LogQuery) -> list[LogBatchRecord]:
        with self._lock:
            found = list(self._predictions if log == "predictions" else self._feedback)
        if query.models is not None:
            found = [b for b in found if b.model in query.models]
        if query.version is not None:
            found = [b for b in found if b.version == query.version]
        return _window(found, query)

    # -- what the metadata store asks (see MetadataReferences) --------------------------
    def referenced_artifacts(self) -> dict[str, str]:
        """Artifact id → the first log batch that names it (garbage collection keeps it)."""
        with self._lock:
            batches = [("prediction", b) for b in self._predictions]
            batches += [("feedback", b) for b in self._feedback]
        kept: dict[str, str] = {}
        for kind, batch in batches:
            kept.setdefault(batch.artifact_id, f"{kind} log batch {batch.id}")
        return kept

    def referenced_runs(self) -> set[str]:
        """None: a log batch names no run."""
        return set()

    def forget_runs(self, run_ids: set[str], execution_ids: set[str]) -> None:
        """Nothing to forget: a log batch names no run."""


def _window(batches: list[LogBatchRecord], query: LogQuery) -> list[LogBatchRecord]:
    def span(b: LogBatchRecord) -> tuple[datetime, datetime]:
        if query.on == "event_time":
            return b.first_event_at or b.first_at, b.last_event_at or b.last_at
        return b.first_at, b.last_at

    spans = [(span(b), b) for b in batches]
    if query.start is not None:
        spans = [(s, b) for s, b in spans if s[1] >= query.start]
    if query.end is not None:
        spans = [(s, b) for s, b in spans if s[0] <= query.end]
    return [b for _, b in sorted(spans, key=lambda item: (item[0][0], item[1].id))]


class MemoryAlertStore(AlertStore):
    """Alerts in a list; one lock makes the cooldown check and the insert atomic."""

    def __init__(self) -> None:
        self._alerts: list[AlertRecord] = []
        self._lock = threading.Lock()

    def _add_alert(self, values: dict[str, Any], cooldown_s: float) -> AlertRecord | None:
        dedup_key = values["dedup_key"]
        with self._lock:
            now = utcnow()
            since = now - timedelta(seconds=cooldown_s)
            if cooldown_s > 0 and any(
                a.dedup_key == dedup_key and a.created_at > since for a in self._alerts
            ):
                return None
            alert = AlertRecord(id=len(self._alerts) + 1, **values, created_at=now)
            self._alerts.append(alert)
        return alert

    def list(self, subject: str | None = None, since: When | None = None) -> list[AlertRecord]:
        with self._lock:
            found = matching(self._alerts, given(subject=subject))
        if since is not None:
            low = to_utc(since)
            found = [a for a in found if a.created_at >= low]
        return sorted(found, key=lambda a: (a.created_at, a.id))

    def _set_delivery(self, alert_id: int, sink: str, entry: dict[str, Any]) -> AlertRecord:
        with self._lock:
            if not 1 <= alert_id <= len(self._alerts):
                raise missing_alert(alert_id)
            alert = self._alerts[alert_id - 1]
            delivery = {**alert.delivery, sink: entry}
            self._alerts[alert_id - 1] = changed = replace(alert, delivery=delivery)
        return changed

    # -- what the metadata store asks (see MetadataReferences) --------------------------
    def referenced_artifacts(self) -> dict[str, str]:
        """Artifact id → the first alert whose report it is (garbage collection keeps it)."""
        with self._lock:
            alerts = list(self._alerts)
        kept: dict[str, str] = {}
        for alert in alerts:
            if alert.report_artifact_id is not None:
                kept.setdefault(alert.report_artifact_id, f"the report of alert {alert.id}")
        return kept

    def referenced_runs(self) -> set[str]:
        """None: an alert names no run."""
        return set()

    def forget_runs(self, run_ids: set[str], execution_ids: set[str]) -> None:
        """Nothing to forget: an alert names no run."""
