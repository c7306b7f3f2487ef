"""Incidents: the alerts of a model grouped by kind, so a person hears once that the
model's inputs drift, not every window and not once per feature.

One incident is open per model and kind (``drift``, ``skew``, ``degraded``,
``attribution``); its records list the features involved. A window that repeats the
kind adds to it (count, last seen, worst value, the features seen) without a delivery; a window clean for the cause counts toward its
resolution, and after ``alerts: resolve_after`` clean windows (1 by default) the
incident resolves. Deliveries go to the sinks on open and on resolve only.

Every step is an alert record of the alert store, keyed by the incident's key
(``flights:drift``), with ``details["incident"]`` saying which step it is
(``opened``, ``repeated``, ``clean``, ``resolved``): the alert records stay readable as
before, and :func:`list_incidents` folds them into incidents. Only the opening and the
resolving records are delivered (the others have no delivery state, so nothing retries
them).

>>> list_incidents(workspace, "flights")[0].status  # doctest: +SKIP
'open'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ctloop.monitor._alerts import Alert, alerts_for, deliver

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.monitor._report import MonitorReport
    from ctloop.monitor._settings import AlertSettings
    from ctloop.store._operations_records import AlertRecord
    from ctloop.store.workspace import Workspace

__all__ = ["Incident", "causes_of", "features_of", "list_incidents", "track_incidents"]

_STEPS = ("opened", "repeated", "clean", "resolved")


@dataclass(frozen=True)
class Incident:
    """One cause of one model, from its opening to its resolution (``status`` ``open``
    or ``resolved``): how many windows showed it, when first and last, the worst value
    seen (the drop of the metric, the drift statistic, the attribution distance), and
    the ids of its alert records."""

    key: str
    subject: str
    severity: str
    cause: str
    status: str
    count: int
    opened_at: datetime
    last_seen: datetime
    worst: float | None
    resolved_at: datetime | None
    clean_windows: int
    alert_ids: tuple[int, ...]
    features: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        data = dict(self.__dict__)
        for name in ("opened_at", "last_seen", "resolved_at"):
            value = data[name]
            data[name] = value.isoformat() if value is not None else None
        data["alert_ids"] = list(self.alert_ids)
        data["features"] = list(self.features)
        return data


def causes_of(report: MonitorReport, report_artifact_id: str | None) -> list[Alert]:
    """The report's alerts, one per kind, keyed ``model:kind`` (``flights:drift``):
    a drift of several features is one cause that lists them all."""
    found: dict[str, Alert] = {}
    for alert in alerts_for(report, report_artifact_id):
        kind = alert.dedup_key.split(":")[1]
        key = f"{report.model}:{kind}"
        if key not in found:
            found[key] = replace(alert, dedup_key=key)
    return list(found.values())


def features_of(details: dict[str, Any]) -> tuple[str, ...]:
    """The features an alert's ``details`` name: the drifted ones, or the ones whose
    attribution changed."""
    if isinstance(details.get("features"), dict):
        return tuple(sorted(details["features"]))
    attribution = details.get("attribution")
    if isinstance(attribution, dict):
        return tuple(sorted(attribution.get("changed") or ()))
    return ()


def track_incidents(
    workspace: Workspace,
    report: MonitorReport,
    report_artifact_id: str | None,
    *,
    settings: Settings,
    config: AlertSettings,
) -> tuple[AlertRecord, ...]:
    """Open, add to or resolve the incidents of the report's model; returns the alert
    records delivered (openings and resolutions; none with ``alerts: digest``, whose
    deliveries :func:`ctloop.monitor._digest.deliver_digest` makes). A ``no-data`` window changes nothing."""
    if report.verdict == "no-data":
        return ()
    current = {a.dedup_key: a for a in causes_of(report, report_artifact_id)}
    open_now = {i.key: i for i in list_incidents(workspace, report.model) if i.status == "open"}
    delivered = []
    send = config.digest_period is None  # with a digest, deliver_digest sends them
    for key, alert in current.items():
        incident = open_now.get(key)
        step = "repeated" if incident is not None else "opened"
        record = _record(workspace, alert, step, _value(alert))
        if step == "opened" and send:
            delivered.append(deliver(workspace, record, settings=settings))
    for key, incident in open_now.items():
        if key in current:
            continue
        clean = incident.clean_windows + 1
        resolved = clean >= config.resolve_after
        step = "resolved" if resolved else "clean"
        cause = f"resolved: {incident.cause}" if resolved else incident.cause
        alert = Alert(
            incident.subject,
            "info" if resolved else incident.severity,
            cause,
            key,
            {"verdict": report.verdict, "window": report.window},
            report_artifact_id,
        )
        record = _record(workspace, alert, step, None, clean_windows=clean, incident=incident)
        if resolved and send:
            delivered.append(deliver(workspace, record, settings=settings))
    return tuple(delivered)


def _record(
    workspace: Workspace,
    alert: Alert,
    step: str,
    value: float | None,
    *,
    clean_windows: int = 0,
    incident: Incident | None = None,
) -> AlertRecord:
    state: dict[str, Any] = {"step": step, "value": value, "clean_windows": clean_windows}
    if incident is not None:
        state["count"] = incident.count
        state["worst"] = incident.worst
    record = workspace.alerts.record(
        source=alert.source,
        subject=alert.subject,
        severity=alert.severity,
        cause=alert.cause,
        details={**alert.details, "incident": state},
        dedup_key=alert.dedup_key,
        report_artifact_id=alert.report_artifact_id,
        cooldown_s=0,
    )
    assert record is not None  # no cooldown: always recorded
    return record


def _value(alert: Alert) -> float | None:
    """How bad the cause is in this window (larger is worse)."""
    details = alert.details
    if "performance" in details:
        drop = details["performance"].get("drop")
        return float(drop) if drop is not None else None
    if "features" in details:
        numbers = [  # each feature's statistic against the training data and last window
            float(side["statistic"])
            for sides in details["features"].values()
            for side in sides.values()
            if isinstance(side, dict) and side.get("statistic") is not None
        ]
        return max(numbers) if numbers else None
    if "attribution" in details:
        return float(details["attribution"].get("distance", 0.0))
    return None


def list_incidents(workspace: Workspace, subject: str | None = None) -> list[Incident]:
    """The incidents folded from the alert records of ``subject`` (every model when
    ``None``), oldest first; alerts recorded before incidents existed are left out."""
    incidents: list[Incident] = []
    latest: dict[str, int] = {}
    for record in workspace.alerts.list(subject):
        state = record.details.get("incident")
        if not isinstance(state, dict) or state.get("step") not in _STEPS:
            continue
        step, at = state["step"], record.created_at
        value = state.get("value")
        index = latest.get(record.dedup_key)
        found = incidents[index] if index is not None else None
        if step == "opened" or found is None or found.status == "resolved":
            if step in ("clean", "resolved"):
                continue
            latest[record.dedup_key] = len(incidents)
            incidents.append(
                Incident(
                    record.dedup_key,
                    record.subject,
                    record.severity,
                    record.cause,
                    "open",
                    1,
                    at,
                    at,
                    value,
                    None,
                    0,
                    (record.id,),
                    features_of(record.details),
                )
            )
            continue
        ids = (*found.alert_ids, record.id)
        if step == "repeated":
            worst = found.worst if value is None else max(found.worst or value, value)
            seen = tuple(sorted({*found.features, *features_of(record.details)}))
            found = replace(
                found,
                count=found.count + 1,
                last_seen=at,
                worst=worst,
                clean_windows=0,
                features=seen,
            )
        else:
            found = replace(found, clean_windows=int(state.get("clean_windows", 1)))
            if step == "resolved":
                found = replace(found, status="resolved", resolved_at=at)
        incidents[latest[record.dedup_key]] = replace(found, alert_ids=ids)
    return incidents
