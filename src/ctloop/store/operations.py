"""Operations data in the metadata database: deployment changes, prediction and feedback
log batches, alerts.

Functions take the store URL (SQLite or PostgreSQL) and use the process's engine for it
(:mod:`ctloop.store.sql_engine`); the schema is migrated on first use. Each call is one
transaction, retried on transient lock conflicts.

>>> url = "sqlite:///ops.db"
>>> record_deployment(url, name="flights", model="flights", action="deploy",
...                   state={"primary": "champion"}, reason="first")  # doctest: +SKIP
DeploymentRecord(id=1, name='flights', ...)
>>> latest_deployment(url, "flights").action  # doctest: +SKIP
'deploy'
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import threading
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Row, Table, func, insert, select, text, update

from ctloop.errors import NotFoundError
from ctloop.store.migrations import ensure_schema
from ctloop.store.operations_records import AlertRecord, DeploymentRecord, LogBatchRecord
from ctloop.store.records import utcnow
from ctloop.store.schema import ALERTS, DEPLOYMENTS, FEEDBACK_LOGS, PREDICTION_LOGS
from ctloop.store.sql_engine import call_with_retry, engine_for, run_transaction, writing

__all__ = [
    "AlertRecord",
    "DeploymentRecord",
    "LogBatchRecord",
    "add_feedback_log",
    "add_prediction_log",
    "deployment_history",
    "feedback_logs",
    "latest_deployment",
    "list_alerts",
    "list_deployments",
    "prediction_logs",
    "record_alert",
    "record_deployment",
    "update_alert_delivery",
]

T = TypeVar("T")
#: a time bound: an aware datetime, or seconds since the epoch
When = datetime | float | int

_ready: weakref.WeakSet[Engine] = weakref.WeakSet()
_ready_lock = threading.Lock()


# -- transactions -----------------------------------------------------------------------
def _engine(store_url: str) -> Engine:
    engine = engine_for(store_url)
    if engine not in _ready:
        with _ready_lock:
            if engine not in _ready:
                call_with_retry(
                    lambda: ensure_schema(engine, url_for_messages=store_url), url=store_url
                )
                _ready.add(engine)
    return engine


def _read(store_url: str, work: Callable[[Connection], T]) -> T:
    return run_transaction(_engine(store_url), work, url=store_url)


def _write(store_url: str, work: Callable[[Connection], T]) -> T:
    return run_transaction(writing(_engine(store_url)), work, url=store_url)


def _insert(store_url: str, table: Table, values: dict[str, Any]) -> int:
    def work(conn: Connection) -> int:
        return int(conn.execute(insert(table).returning(table.c.id), values).scalar_one())

    return _write(store_url, work)


def to_utc(moment: When) -> datetime:
    """``moment`` as an aware UTC datetime (numbers are seconds since the epoch); a naive
    datetime raises ``ValueError``.

    >>> to_utc(0).isoformat()
    '1970-01-01T00:00:00+00:00'
    """
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError(
                f"time {moment.isoformat()} has no time zone; pass an aware datetime "
                "(datetime.now(UTC)) or seconds since the epoch"
            )
        return moment.astimezone(UTC)
    return datetime.fromtimestamp(float(moment), UTC)


def current_user() -> str:
    """Who is acting: ``$USER``, else the login name, else ``unknown``."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


# -- deployments ------------------------------------------------------------------------
def record_deployment(
    store_url: str,
    *,
    name: str,
    model: str,
    action: str,
    state: dict[str, Any],
    reason: str,
    user: str | None = None,
) -> DeploymentRecord:
    """Record one change of deployment ``name``; ``state`` is its whole routing after it.

    >>> record_deployment(url, name="flights", model="flights", action="deploy",
    ...                   state={}, reason="first").id  # doctest: +SKIP
    1
    """
    values: dict[str, Any] = {
        "name": name,
        "model": model,
        "action": action,
        "state": dict(state),
        "reason": reason,
        "created_at": utcnow(),
        "created_by": user or current_user(),
        "host": socket.gethostname(),
    }
    row_id = _insert(store_url, DEPLOYMENTS, values)
    return DeploymentRecord(id=row_id, **values)


def deployment_history(
    store_url: str, name: str, limit: int | None = None
) -> list[DeploymentRecord]:
    """The changes of deployment ``name``, oldest first (the newest ``limit`` if given).

    >>> [r.action for r in deployment_history(url, "flights")]  # doctest: +SKIP
    ['deploy', 'canary', 'promote']
    """
    query = select(DEPLOYMENTS).where(DEPLOYMENTS.c.name == name).order_by(DEPLOYMENTS.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    rows = _read(store_url, lambda conn: conn.execute(query).all())
    return [_deployment(row) for row in reversed(rows)]


def latest_deployment(store_url: str, name: str) -> DeploymentRecord | None:
    """The latest change of deployment ``name`` (its current state), or ``None``."""
    found = deployment_history(store_url, name, limit=1)
    return found[0] if found else None


def list_deployments(store_url: str) -> list[DeploymentRecord]:
    """The latest change of every deployment, by name."""
    latest = select(func.max(DEPLOYMENTS.c.id)).group_by(DEPLOYMENTS.c.name).scalar_subquery()
    query = select(DEPLOYMENTS).where(DEPLOYMENTS.c.id.in_(latest)).order_by(DEPLOYMENTS.c.name)
    return [_deployment(row) for row in _read(store_url, lambda conn: conn.execute(query).all())]


def _deployment(row: Row[Any]) -> DeploymentRecord:
    return DeploymentRecord(**row._mapping)


# -- prediction and feedback logs -------------------------------------------------------
def add_prediction_log(
    store_url: str,
    *,
    model: str,
    version: int | None,
    deployment: str | None,
    artifact_id: str,
    rows: int,
    first_at: When,
    last_at: When,
) -> LogBatchRecord:
    """Record a stored batch of logged predictions (the artifact must be registered)."""
    values: dict[str, Any] = {
        "model": model,
        "version": version,
        "deployment": deployment,
        "artifact_id": artifact_id,
        "rows": rows,
        "first_at": to_utc(first_at),
        "last_at": to_utc(last_at),
        "created_at": utcnow(),
    }
    return LogBatchRecord(id=_insert(store_url, PREDICTION_LOGS, values), **values)


def add_feedback_log(
    store_url: str,
    *,
    model: str | None,
    artifact_id: str,
    rows: int,
    first_at: When,
    last_at: When,
) -> LogBatchRecord:
    """Record a stored batch of feedback labels (the artifact must be registered)."""
    values: dict[str, Any] = {
        "model": model,
        "artifact_id": artifact_id,
        "rows": rows,
        "first_at": to_utc(first_at),
        "last_at": to_utc(last_at),
        "created_at": utcnow(),
    }
    row_id = _insert(store_url, FEEDBACK_LOGS, values)
    return LogBatchRecord(id=row_id, version=None, deployment=None, **values)


def prediction_logs(
    store_url: str,
    model: str,
    start: When | None = None,
    end: When | None = None,
    version: int | None = None,
) -> list[LogBatchRecord]:
    """Prediction batches of ``model`` that overlap ``[start, end]``, oldest first.

    >>> sum(b.rows for b in prediction_logs(url, "flights", start=time.time() - 3600))  # doctest: +SKIP
    4200
    """
    query = _window(PREDICTION_LOGS, start, end).where(PREDICTION_LOGS.c.model == model)
    if version is not None:
        query = query.where(PREDICTION_LOGS.c.version == version)
    rows = _read(store_url, lambda conn: conn.execute(query).all())
    return [LogBatchRecord(**row._mapping) for row in rows]


def feedback_logs(
    store_url: str,
    model: str | None = None,
    start: When | None = None,
    end: When | None = None,
) -> list[LogBatchRecord]:
    """Feedback batches that overlap ``[start, end]``, oldest first: those of ``model``
    and those logged without a model (``model=None``: every batch)."""
    query = _window(FEEDBACK_LOGS, start, end)
    if model is not None:
        query = query.where((FEEDBACK_LOGS.c.model == model) | FEEDBACK_LOGS.c.model.is_(None))
    rows = _read(store_url, lambda conn: conn.execute(query).all())
    return [LogBatchRecord(version=None, deployment=None, **row._mapping) for row in rows]


def _window(table: Table, start: When | None, end: When | None) -> Any:
    query = select(table).order_by(table.c.first_at, table.c.id)
    if start is not None:
        query = query.where(table.c.last_at >= to_utc(start))
    if end is not None:
        query = query.where(table.c.first_at <= to_utc(end))
    return query


# -- alerts -----------------------------------------------------------------------------
def record_alert(
    store_url: str,
    *,
    source: str,
    subject: str,
    severity: str,
    cause: str,
    details: dict[str, Any],
    dedup_key: str,
    report_artifact_id: str | None = None,
    cooldown_s: float = 0,
) -> AlertRecord | None:
    """Record an alert, or return ``None`` when one with the same ``dedup_key`` was
    recorded less than ``cooldown_s`` seconds ago. The check and the insert are one
    write transaction, so concurrent writers record one alert, not several.

    >>> record_alert(url, source="monitor", subject="flights", severity="warning",
    ...              cause="drift in 'distance'", details={}, dedup_key="drift:flights",
    ...              cooldown_s=3600)  # doctest: +SKIP
    AlertRecord(id=1, ...)
    """

    def work(conn: Connection) -> AlertRecord | None:
        if cooldown_s > 0:
            _lock_key(conn, dedup_key)
        now = utcnow()  # after the lock: the previous holder's alert is older
        if cooldown_s > 0:
            since = now - timedelta(seconds=cooldown_s)
            recent = select(ALERTS.c.id).where(
                ALERTS.c.dedup_key == dedup_key, ALERTS.c.created_at > since
            )
            if conn.execute(recent.limit(1)).first() is not None:
                return None
        values: dict[str, Any] = {
            "source": source,
            "subject": subject,
            "severity": severity,
            "cause": cause,
            "dedup_key": dedup_key,
            "details": dict(details),
            "report_artifact_id": report_artifact_id,
            "delivery": {},
            "created_at": now,
        }
        row_id = conn.execute(insert(ALERTS).returning(ALERTS.c.id), values).scalar_one()
        return AlertRecord(id=int(row_id), **values)

    return _write(store_url, work)


def _lock_key(conn: Connection, key: str) -> None:
    """Serialise writers of one key until the transaction ends (SQLite's ``BEGIN
    IMMEDIATE`` already serialises every writer)."""
    if conn.dialect.name == "postgresql":
        number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
        signed = number - 2**64 if number >= 2**63 else number
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": signed})


def list_alerts(
    store_url: str, subject: str | None = None, since: When | None = None
) -> list[AlertRecord]:
    """Alerts, oldest first, optionally of one ``subject`` and recorded after ``since``."""
    query = select(ALERTS).order_by(ALERTS.c.created_at, ALERTS.c.id)
    if subject is not None:
        query = query.where(ALERTS.c.subject == subject)
    if since is not None:
        query = query.where(ALERTS.c.created_at >= to_utc(since))
    return [AlertRecord(**r._mapping) for r in _read(store_url, lambda c: c.execute(query).all())]


def update_alert_delivery(
    store_url: str,
    alert_id: int,
    sink: str,
    status: str,
    attempts: int,
    last_error: str | None = None,
) -> AlertRecord:
    """Record the delivery of alert ``alert_id`` to ``sink`` (e.g. ``"slack"``,
    ``status`` ``"sent"`` or ``"failed"``); other sinks' entries are kept.

    >>> update_alert_delivery(url, 1, "slack", "sent", attempts=1).delivery  # doctest: +SKIP
    {'slack': {'status': 'sent', 'attempts': 1, 'last_error': None, 'updated_at': '…'}}
    """

    def work(conn: Connection) -> AlertRecord:
        row = conn.execute(select(ALERTS).where(ALERTS.c.id == alert_id).with_for_update()).first()
        if row is None:
            raise NotFoundError(
                f"alert {alert_id} does not exist; list alerts with "
                "ctloop.store.operations.list_alerts(store_url)"
            )
        delivery = dict(row.delivery or {})
        delivery[sink] = {
            "status": status,
            "attempts": attempts,
            "last_error": last_error,
            "updated_at": utcnow().isoformat(),
        }
        conn.execute(update(ALERTS).where(ALERTS.c.id == alert_id).values(delivery=delivery))
        return AlertRecord(**{**row._mapping, "delivery": delivery})

    return _write(store_url, work)
