"""Operations data: deployment changes, prediction and feedback log batches, alerts.

Each concern is a small interface with its error contract in the docstring —
:class:`DeploymentStore`, :class:`LogStore`, :class:`AlertStore` — implemented on the
metadata database (``Sql…``: SQLite or PostgreSQL, one transaction per call, retried on
transient lock conflicts, the schema migrated on first use) and in memory
(:mod:`ctloop.store.memory`). Reach them through a workspace::

    >>> from ctloop.store.workspace import Workspace
    >>> ws = Workspace.in_memory()
    >>> ws.deployments.record(name="flights", model="flights", action="deploy",
    ...                       state={"primary": "champion"}, reason="first").id
    1
    >>> ws.deployments.latest("flights").action
    'deploy'
"""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, Table, func, insert, or_, select, text, update

from ctloop.errors import NotFoundError
from ctloop.store._operations_records import AlertRecord, DeploymentRecord, LogBatchRecord
from ctloop.store._query import given, where_equal
from ctloop.store._schema import ALERTS, DEPLOYMENTS, FEEDBACK_LOGS, PREDICTION_LOGS
from ctloop.store._transactions import SqlTransactions
from ctloop.store.records import utcnow

__all__ = [
    "AlertRecord",
    "AlertStore",
    "DeploymentRecord",
    "DeploymentStore",
    "LogBatchRecord",
    "LogQuery",
    "LogStore",
    "SqlAlertStore",
    "SqlDeploymentStore",
    "SqlLogStore",
    "When",
    "current_user",
    "to_utc",
]

T = TypeVar("T")
#: a time bound: an aware datetime, or seconds since the epoch
When = datetime | float | int


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


# -- the interfaces ---------------------------------------------------------------------
class DeploymentStore(ABC):
    """The history of every deployment's routing: each change is one record holding the
    whole state after it, so the latest record is the current state.

    Errors: an unreachable backend raises :class:`~ctloop.errors.StoreUnavailableError`;
    reading a deployment that was never recorded is not an error (``None`` / ``[]``).
    """

    def record(
        self,
        *,
        name: str,
        model: str,
        action: str,
        state: dict[str, Any],
        reason: str,
        user: str | None = None,
    ) -> DeploymentRecord:
        """Record one change of deployment ``name``; ``state`` is its whole routing after
        it; ``user`` defaults to :func:`current_user`."""
        return self._add_deployment(deployment_values(name, model, action, state, reason, user))

    @abstractmethod
    def history(self, name: str, limit: int | None = None) -> list[DeploymentRecord]:
        """The changes of deployment ``name``, oldest first (the newest ``limit``)."""

    def latest(self, name: str) -> DeploymentRecord | None:
        """The latest change of deployment ``name`` (its current state), or ``None``."""
        found = self.history(name, limit=1)
        return found[0] if found else None

    @abstractmethod
    def list(self) -> list[DeploymentRecord]:
        """The latest change of every deployment, by name."""

    @abstractmethod
    def _add_deployment(self, values: dict[str, Any]) -> DeploymentRecord:
        """Store a change (``values``: the fields of its record but the id); return it."""


#: the times a log can be read by: when rows were logged, or the event time they are about
LOG_CLOCKS = ("timestamp", "event_time")


class LogStore(ABC):
    """The index of logged prediction and feedback batches; each batch's rows are a
    registered ``Dataset`` artifact. A batch overlaps ``[start, end]`` when its
    ``last_at >= start`` and ``first_at <= end``; lists are ordered by ``first_at``
    then insertion. Read ``on="event_time"``, the same holds of ``first_event_at`` and
    ``last_event_at`` (a batch without them, logged before event times were kept,
    counts by its log times).

    Errors: an unreachable backend raises :class:`~ctloop.errors.StoreUnavailableError`;
    a naive datetime bound raises ``ValueError``.
    """

    def add_predictions(
        self,
        *,
        model: str,
        version: int | None,
        deployment: str | None,
        artifact_id: str,
        rows: int,
        first_at: When,
        last_at: When,
        first_event_at: When | None = None,
        last_event_at: When | None = None,
    ) -> LogBatchRecord:
        """Record a stored batch of logged predictions (its event times default to its
        log times)."""
        values = batch_values(
            model, artifact_id, rows, (first_at, last_at), (first_event_at, last_event_at)
        )
        return self._add_batch("predictions", dict(values, version=version, deployment=deployment))

    def add_feedback(
        self,
        *,
        model: str | None,
        artifact_id: str,
        rows: int,
        first_at: When,
        last_at: When,
        first_event_at: When | None = None,
        last_event_at: When | None = None,
    ) -> LogBatchRecord:
        """Record a stored batch of feedback labels (``model=None``: labels for any model)."""
        values = batch_values(
            model, artifact_id, rows, (first_at, last_at), (first_event_at, last_event_at)
        )
        return self._add_batch("feedback", dict(values, version=None, deployment=None))

    def predictions(
        self,
        model: str,
        start: When | None = None,
        end: When | None = None,
        version: int | None = None,
        *,
        on: str = "timestamp",
    ) -> list[LogBatchRecord]:
        """Prediction batches of ``model`` (of one ``version``) overlapping the window
        by their log times, or ``on="event_time"`` by their event times."""
        return self._batches("predictions", LogQuery.of((model,), version, start, end, on))

    def feedback(
        self,
        model: str | None = None,
        start: When | None = None,
        end: When | None = None,
        *,
        on: str = "timestamp",
    ) -> list[LogBatchRecord]:
        """Feedback batches overlapping the window: those of ``model`` and those logged
        without a model (``model=None``: every batch)."""
        models = None if model is None else (model, None)
        return self._batches("feedback", LogQuery.of(models, None, start, end, on))

    @abstractmethod
    def _add_batch(self, log: str, values: dict[str, Any]) -> LogBatchRecord:
        """Store a batch in ``log`` (``predictions`` or ``feedback``); ``values`` are
        the fields of its record but the id. Return the record."""

    @abstractmethod
    def _batches(self, log: str, query: LogQuery) -> list[LogBatchRecord]:
        """The batches of ``log`` that ``query`` asks for, ordered as the class says."""


@dataclass(frozen=True)
class LogQuery:
    """A checked read of a log: the batches whose model is one of ``models`` (``None``:
    any), of one ``version`` if given, overlapping ``[start, end]`` on the clock ``on``."""

    models: tuple[str | None, ...] | None
    version: int | None
    start: datetime | None
    end: datetime | None
    on: str

    @classmethod
    def of(
        cls,
        models: tuple[str | None, ...] | None,
        version: int | None,
        start: When | None,
        end: When | None,
        on: str,
    ) -> LogQuery:
        """The query with its bounds in UTC and its clock checked."""
        low = None if start is None else to_utc(start)
        high = None if end is None else to_utc(end)
        return cls(models, version, low, high, check_clock(on))


class AlertStore(ABC):
    """Alerts and their delivery to each sink.

    Errors: updating an alert that does not exist raises
    :class:`~ctloop.errors.NotFoundError`; an unreachable backend
    :class:`~ctloop.errors.StoreUnavailableError`.
    """

    def record(
        self,
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
        recorded less than ``cooldown_s`` seconds ago. The check and the insert are
        atomic: concurrent writers record one alert, not several."""
        values = alert_values(
            source, subject, severity, cause, details, dedup_key, report_artifact_id
        )
        return self._add_alert(values, cooldown_s)

    @abstractmethod
    def list(self, subject: str | None = None, since: When | None = None) -> list[AlertRecord]:
        """Alerts, oldest first, of one ``subject`` and recorded after ``since`` if given."""

    def update_delivery(
        self,
        alert_id: int,
        sink: str,
        status: str,
        attempts: int,
        last_error: str | None = None,
    ) -> AlertRecord:
        """Record the delivery of alert ``alert_id`` to ``sink`` (``status`` a
        :class:`~ctloop.store.statuses.DeliveryStatus`); other sinks' entries are kept."""
        return self._set_delivery(alert_id, sink, delivery_entry(status, attempts, last_error))

    @abstractmethod
    def _add_alert(self, values: dict[str, Any], cooldown_s: float) -> AlertRecord | None:
        """Store an alert (``values``: the fields of its record but the id and
        ``created_at``, stamped when the cooldown is checked), unless one with its
        ``dedup_key`` is younger than ``cooldown_s``: then return ``None``."""

    @abstractmethod
    def _set_delivery(self, alert_id: int, sink: str, entry: dict[str, Any]) -> AlertRecord:
        """Set the ``delivery`` entry of ``sink`` on alert ``alert_id``; return the alert."""


def delivery_entry(status: str, attempts: int, last_error: str | None) -> dict[str, Any]:
    """One sink's entry in an alert's ``delivery``."""
    return {
        "status": status,
        "attempts": attempts,
        "last_error": last_error,
        "updated_at": utcnow().isoformat(),
    }


def alert_values(
    source: str,
    subject: str,
    severity: str,
    cause: str,
    details: dict[str, Any],
    dedup_key: str,
    report_artifact_id: str | None,
) -> dict[str, Any]:
    """The columns of a new alert (not yet delivered anywhere) but its ``created_at``."""
    return {
        "source": source,
        "subject": subject,
        "severity": severity,
        "cause": cause,
        "dedup_key": dedup_key,
        "details": dict(details),
        "report_artifact_id": report_artifact_id,
        "delivery": {},
    }


def missing_alert(alert_id: int) -> NotFoundError:
    """The error for an alert id that is not there."""
    return NotFoundError(f"alert {alert_id} does not exist; list alerts with `ctloop alerts list`")


# -- SQL --------------------------------------------------------------------------------
class _SqlOperations(SqlTransactions):
    retry_integrity = False  # a broken constraint is a missing artifact, not a race

    def _insert(self, table: Table, values: dict[str, Any]) -> int:
        def work(conn: Connection) -> int:
            return int(conn.execute(insert(table).returning(table.c.id), values).scalar_one())

        return self._write(work)

    def _rows(self, query: Any) -> list[Row[Any]]:
        return list(self._read(lambda conn: conn.execute(query).all()))


class SqlDeploymentStore(_SqlOperations, DeploymentStore):
    """Deployment changes in the ``deployments`` table of the database at ``url``.

    >>> store = SqlDeploymentStore("sqlite://")
    >>> store.record(name="f", model="f", action="deploy", state={}, reason="").action
    'deploy'
    """

    def _add_deployment(self, values: dict[str, Any]) -> DeploymentRecord:
        return DeploymentRecord(id=self._insert(DEPLOYMENTS, values), **values)

    def history(self, name: str, limit: int | None = None) -> list[DeploymentRecord]:
        query = (
            select(DEPLOYMENTS).where(DEPLOYMENTS.c.name == name).order_by(DEPLOYMENTS.c.id.desc())
        )
        if limit is not None:
            query = query.limit(limit)
        return [DeploymentRecord(**row._mapping) for row in reversed(self._rows(query))]

    def list(self) -> list[DeploymentRecord]:
        latest = select(func.max(DEPLOYMENTS.c.id)).group_by(DEPLOYMENTS.c.name).scalar_subquery()
        query = select(DEPLOYMENTS).where(DEPLOYMENTS.c.id.in_(latest)).order_by(DEPLOYMENTS.c.name)
        return [DeploymentRecord(**row._mapping) for row in self._rows(query)]


def deployment_values(
    name: str, model: str, action: str, state: dict[str, Any], reason: str, user: str | None
) -> dict[str, Any]:
    """The columns of a new deployment record."""
    return {
        "name": name,
        "model": model,
        "action": action,
        "state": dict(state),
        "reason": reason,
        "created_at": utcnow(),
        "created_by": user or current_user(),
        "host": socket.gethostname(),
    }


class SqlLogStore(_SqlOperations, LogStore):
    """Log batches in the ``prediction_logs`` and ``feedback_logs`` tables."""

    def _add_batch(self, log: str, values: dict[str, Any]) -> LogBatchRecord:
        table = _LOG_TABLES[log]
        row_id = self._insert(
            table, {key: value for key, value in values.items() if key in table.c}
        )
        return LogBatchRecord(id=row_id, **values)

    def _batches(self, log: str, query: LogQuery) -> list[LogBatchRecord]:
        table = _LOG_TABLES[log]
        stmt = _window(table, query)
        if query.models is not None:
            stmt = stmt.where(or_(*(table.c.model == model for model in query.models)))
        if query.version is not None:
            stmt = stmt.where(table.c.version == query.version)
        unversioned: dict[str, Any] = (
            {} if "version" in table.c else {"version": None, "deployment": None}
        )
        return [LogBatchRecord(**unversioned, **row._mapping) for row in self._rows(stmt)]


_LOG_TABLES = {"predictions": PREDICTION_LOGS, "feedback": FEEDBACK_LOGS}


def batch_values(
    model: str | None,
    artifact_id: str,
    rows: int,
    logged: tuple[When, When],
    events: tuple[When | None, When | None] = (None, None),
) -> dict[str, Any]:
    """The columns every log batch has; the event times default to the ``logged`` ones."""
    first_at, last_at = to_utc(logged[0]), to_utc(logged[1])
    first_event, last_event = events
    return {
        "model": model,
        "artifact_id": artifact_id,
        "rows": rows,
        "first_at": first_at,
        "last_at": last_at,
        "first_event_at": first_at if first_event is None else to_utc(first_event),
        "last_event_at": last_at if last_event is None else to_utc(last_event),
        "created_at": utcnow(),
    }


def check_clock(on: str) -> str:
    """``on`` when it names a time a log is read by (:data:`LOG_CLOCKS`), else a
    ``ValueError`` naming it."""
    if on not in LOG_CLOCKS:
        raise ValueError(f"logs are read on timestamp or event_time, not {on!r}")
    return on


def _window(table: Table, query: LogQuery) -> Any:
    first: Any = table.c.first_at
    last: Any = table.c.last_at
    if query.on == "event_time":
        first = func.coalesce(table.c.first_event_at, table.c.first_at)
        last = func.coalesce(table.c.last_event_at, table.c.last_at)
    stmt = select(table).order_by(first, table.c.id)
    if query.start is not None:
        stmt = stmt.where(last >= query.start)
    if query.end is not None:
        stmt = stmt.where(first <= query.end)
    return stmt


class SqlAlertStore(_SqlOperations, AlertStore):
    """Alerts in the ``alerts`` table; the cooldown check and the insert are one write
    transaction (on PostgreSQL under an advisory lock of the ``dedup_key``)."""

    def _add_alert(self, values: dict[str, Any], cooldown_s: float) -> AlertRecord | None:
        dedup_key = values["dedup_key"]

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
            row = dict(values, created_at=now)
            row_id = conn.execute(insert(ALERTS).returning(ALERTS.c.id), row).scalar_one()
            return AlertRecord(id=int(row_id), **row)

        return self._write(work)

    def list(self, subject: str | None = None, since: When | None = None) -> list[AlertRecord]:
        query = select(ALERTS).order_by(ALERTS.c.created_at, ALERTS.c.id)
        query = where_equal(query, ALERTS, given(subject=subject))
        if since is not None:
            query = query.where(ALERTS.c.created_at >= to_utc(since))
        return [AlertRecord(**row._mapping) for row in self._rows(query)]

    def _set_delivery(self, alert_id: int, sink: str, entry: dict[str, Any]) -> AlertRecord:
        def work(conn: Connection) -> AlertRecord:
            query = select(ALERTS).where(ALERTS.c.id == alert_id).with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise missing_alert(alert_id)
            delivery = {**(row.delivery or {}), sink: entry}
            conn.execute(update(ALERTS).where(ALERTS.c.id == alert_id).values(delivery=delivery))
            return AlertRecord(**{**row._mapping, "delivery": delivery})

        return self._write(work)


def _lock_key(conn: Connection, key: str) -> None:
    """Serialise writers of one key until the transaction ends (SQLite's ``BEGIN
    IMMEDIATE`` already serialises every writer)."""
    if conn.dialect.name == "postgresql":
        number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
        signed = number - 2**64 if number >= 2**63 else number
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": signed})
