"""Alerts from monitoring reports, and their delivery to sinks: log, file (JSON lines) and
webhook (HTTP POST of the alert as JSON).

One drift raises one alert: the de-duplication key is model + cause + feature set, and an
alert with the same key inside ``alerts.cooldown_s`` is not recorded again. Every delivery
is kept in the ``alerts`` table, per sink; a sink that fails is retried by
``deliver_pending`` (the scheduler calls it each tick) with exponential backoff, up to
``alerts.max_attempts`` tries, so an alert is not lost while a receiver is down. Alerts
and their delivery state live in the workspace's alert store; the sinks and their retry
policy come from the settings.

>>> from ctloop.monitor import MonitorReport
>>> report = MonitorReport("flights", 3, "a1", "drift", {"rows": 500},
...     drift={"columns": [{"column": "distance", "drifted": True, "test": "psi",
...            "statistic": 0.4, "p_value": None, "threshold": 0.2}]})
>>> [a.dedup_key for a in alerts_for(report, "r1")]
['flights:drift:distance']
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import AlertError
from ctloop.monitor._report import MonitorReport
from ctloop.monitor._settings import AlertSettings
from ctloop.store.statuses import DeliveryStatus

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.store._operations_records import AlertRecord
    from ctloop.store.workspace import Workspace

logger = logging.getLogger("ctloop.alerts")
SOURCE = "monitor"
_MAX_BACKOFF_S = 3600.0


@dataclass(frozen=True)
class Alert:
    """An alert before it is recorded: severity, a one-sentence cause, the numbers, and
    the report it links to.

    >>> Alert("flights", "warning", "drift in 'distance'", "flights:drift:distance").source
    'monitor'
    """

    subject: str
    severity: str
    cause: str
    dedup_key: str
    details: dict[str, Any] = field(default_factory=dict)
    report_artifact_id: str | None = None
    source: str = SOURCE


def alerts_for(report: MonitorReport, report_artifact_id: str | None) -> list[Alert]:
    """The alerts a report calls for: degradation, drifted features, attribution shift."""
    base = {
        "version": report.version,
        "verdict": report.verdict,
        "window": report.window,
        "report": report_artifact_id,
        "show": f"ctloop monitor show {report_artifact_id}" if report_artifact_id else None,
    }
    found = []
    perf = report.performance
    if perf and perf["degraded"]:
        cause = next(r for r in report.reasons if r.startswith(perf["metric"]))
        key = f"{report.model}:degraded:{perf['metric']}"
        found.append(Alert(report.model, "critical", cause, key, {**base, "performance": perf}))
    drifted = report.drifted_features
    if drifted:
        cause = f"{report.model} v{report.version}: drift in {', '.join(map(repr, drifted))}"
        key = f"{report.model}:drift:{','.join(sorted(drifted))}"
        numbers = _drift_numbers(report)
        found.append(Alert(report.model, "warning", cause, key, {**base, "features": numbers}))
    shift = report.attribution
    if shift and shift["drifted"]:
        cause = f"{report.model} v{report.version} leans on different features: {', '.join(shift['changed'])}"
        key = f"{report.model}:attribution:{','.join(sorted(shift['changed']))}"
        found.append(Alert(report.model, "warning", cause, key, {**base, "attribution": shift}))
    return [
        Alert(a.subject, a.severity, a.cause, a.dedup_key, a.details, report_artifact_id)
        for a in found
    ]


def raise_alerts(
    workspace: Workspace,
    report: MonitorReport,
    report_artifact_id: str | None,
    *,
    settings: Settings | None = None,
) -> tuple[AlertRecord, ...]:
    """Record the report's alerts in ``workspace`` and deliver them to the sinks of
    ``settings`` (default: ``ctloop.yaml`` ``alerts:``): as incidents (see
    :mod:`ctloop.monitor._incidents`; the records delivered are returned), or with
    ``alerts: incidents: false`` each alert, skipping those in cooldown."""
    settings = _settings(settings)
    config = AlertSettings.from_mapping(settings.alerts)
    if config.incidents:
        from ctloop.monitor._incidents import track_incidents

        return track_incidents(
            workspace, report, report_artifact_id, settings=settings, config=config
        )
    recorded = []
    for alert in alerts_for(report, report_artifact_id):
        record = workspace.alerts.record(
            source=alert.source,
            subject=alert.subject,
            severity=alert.severity,
            cause=alert.cause,
            details=alert.details,
            dedup_key=alert.dedup_key,
            report_artifact_id=alert.report_artifact_id,
            cooldown_s=config.cooldown_s,
        )
        if record is not None:
            recorded.append(deliver(workspace, record, settings=settings))
    return tuple(recorded)


def deliver(
    workspace: Workspace, record: AlertRecord, *, settings: Settings | None = None
) -> AlertRecord:
    """Send ``record`` to every configured sink it has not reached yet; keep the state in
    ``workspace``."""
    config = AlertSettings.from_mapping(_settings(settings).alerts)
    for sink in config.sinks:
        name = sink_name(sink)
        state = record.delivery.get(name) or {"status": DeliveryStatus.PENDING, "attempts": 0}
        if state["status"] != DeliveryStatus.PENDING:
            continue
        record = _attempt(workspace, record, sink, int(state["attempts"]) + 1, config)
    return record


def deliver_pending(
    workspace: Workspace,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> list[AlertRecord]:
    """Send the digest of a period that has passed (with ``alerts: digest``; see
    :mod:`ctloop.monitor._digest`), then retry every delivery still pending whose backoff
    has passed; return the alerts retried. Alerts of the last seven days are looked at.

    >>> deliver_pending(workspace)  # doctest: +SKIP
    [AlertRecord(id=3, ..., delivery={'webhook': {'status': 'sent', 'attempts': 2, ...}})]
    """
    from ctloop.monitor._digest import deliver_digest

    settings = _settings(settings)
    config = AlertSettings.from_mapping(settings.alerts)
    moment = now or datetime.now(UTC)
    deliver_digest(workspace, settings=settings, now=moment)  # its own delivery, not a retry
    retried = []
    for record in workspace.alerts.list(since=moment - timedelta(days=7)):
        due = [s for s in config.sinks if _due(record.delivery.get(sink_name(s)), moment, config)]
        for sink in due:
            attempts = int(record.delivery.get(sink_name(sink), {}).get("attempts", 0)) + 1
            record = _attempt(workspace, record, sink, attempts, config)
        if due:
            retried.append(record)
    return retried


def sink_name(sink: dict[str, Any]) -> str:
    """A sink's name in the delivery state: its ``name``, else its type.

    >>> sink_name({"type": "webhook"}), sink_name({"type": "webhook", "name": "oncall"})
    ('webhook', 'oncall')
    """
    return str(sink.get("name") or sink["type"])


def alert_payload(record: AlertRecord) -> dict[str, Any]:
    """The JSON document sinks receive."""
    return {
        "id": record.id,
        "source": record.source,
        "subject": record.subject,
        "severity": record.severity,
        "cause": record.cause,
        "dedup_key": record.dedup_key,
        "details": record.details,
        "report_artifact_id": record.report_artifact_id,
        "created_at": record.created_at.isoformat(),
    }


# -- sinks -------------------------------------------------------------------------------


def send(sink: dict[str, Any], payload: dict[str, Any]) -> None:
    """Deliver one alert to one sink; raise :class:`AlertError` when it fails."""
    kind = sink["type"]
    if kind == "log":
        level = logging.ERROR if payload["severity"] == "critical" else logging.WARNING
        logger.log(
            level, "%s alert on %s: %s", payload["severity"], payload["subject"], payload["cause"]
        )
    elif kind == "file":
        _append_line(Path(sink.get("path") or ".ctloop/alerts.jsonl"), payload)
    elif kind == "webhook":
        _post(sink, payload)
    else:
        raise AlertError(f"alert sink type {kind!r} is unknown; use log, file or webhook")


def _append_line(path: Path, payload: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(payload, default=str) + "\n")
    except OSError as exc:
        raise AlertError(
            f"cannot append the alert to {path}: {exc}; fix the file sink's path"
        ) from exc


def _post(sink: dict[str, Any], payload: dict[str, Any]) -> None:
    import httpx

    url = sink.get("url")
    if not url:
        raise AlertError("a webhook alert sink has no url; add url: to it in ctloop.yaml 'alerts:'")
    try:
        response = httpx.post(
            str(url),
            content=json.dumps(payload, default=str),
            headers={"content-type": "application/json", **dict(sink.get("headers") or {})},
            timeout=float(sink.get("timeout_s", 5.0)),
        )
    except httpx.HTTPError as exc:
        raise AlertError(f"webhook {url} cannot be reached: {exc}") from exc
    if response.status_code >= 300:
        raise AlertError(f"webhook {url} answered HTTP {response.status_code}")


def _attempt(
    workspace: Workspace,
    record: AlertRecord,
    sink: dict[str, Any],
    attempts: int,
    config: AlertSettings,
) -> AlertRecord:
    try:
        send(sink, alert_payload(record))
    except AlertError as exc:
        status = (
            DeliveryStatus.FAILED if attempts >= config.max_attempts else DeliveryStatus.PENDING
        )
        logger.warning(
            "alert %s not delivered to %s (try %d): %s", record.id, sink_name(sink), attempts, exc
        )
        return workspace.alerts.update_delivery(
            record.id, sink_name(sink), status, attempts, str(exc)
        )
    return workspace.alerts.update_delivery(
        record.id, sink_name(sink), DeliveryStatus.SENT, attempts
    )


def _due(state: dict[str, Any] | None, now: datetime, config: AlertSettings) -> bool:
    """Whether a pending delivery's backoff (``backoff_s`` doubling per try) has passed."""
    if not state or state.get("status") != DeliveryStatus.PENDING:
        return False
    attempts = int(state.get("attempts", 0))
    updated = state.get("updated_at")
    if not updated or attempts == 0:
        return True
    wait = min(_MAX_BACKOFF_S, config.backoff_s * 2 ** (attempts - 1))
    last = datetime.fromisoformat(str(updated))
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return now >= last + timedelta(seconds=wait)


def _drift_numbers(report: MonitorReport) -> dict[str, Any]:
    numbers: dict[str, Any] = {}
    for against, part in (("training", report.skew), ("previous", report.drift)):
        for column in (part or {}).get("columns", ()):
            if column["drifted"]:
                entry = numbers.setdefault(column["column"], {})
                entry[against] = {
                    "test": column["test"],
                    "statistic": column["statistic"],
                    "p_value": column["p_value"],
                    "threshold": column["threshold"],
                }
    return numbers


def _settings(settings: Settings | None) -> Settings:
    from ctloop.config import Settings

    return settings or Settings.load()
