"""Alert digests: with ``alerts: digest: 1d`` the sinks hear of incidents once a period,
in one delivery per sink listing what opened and what resolved, instead of once per
opening and resolution.

The incidents are tracked as without a digest (their records are kept, undelivered).
:func:`deliver_digest` (called by ``deliver_pending``, so by the scheduler each tick and
by ``ctloop alerts retry``) closes a period once it has passed: it records one alert
(source ``digest``, subject ``ctloop``, ``details["digest"]`` with ``since``, ``until``,
``opened`` and ``resolved``) and delivers it like any alert, retries included. A period
in which nothing opened or resolved sends nothing. The next period starts where the
last digest ended.

>>> deliver_digest(workspace, settings=settings)  # doctest: +SKIP
AlertRecord(id=12, source='digest', cause='2 incidents opened, 1 resolved since ...')
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.store._operations_records import AlertRecord
    from ctloop.store.workspace import Workspace

__all__ = ["deliver_digest"]

SOURCE = "digest"
_LISTED = ("opened", "resolved")


def deliver_digest(
    workspace: Workspace, *, settings: Settings, now: datetime | None = None
) -> AlertRecord | None:
    """Record and deliver the digest of the period that ended by ``now`` (default: the
    current time), if ``alerts: digest`` is set, the period has passed and something
    opened or resolved in it; else None."""
    from ctloop.monitor._alerts import deliver
    from ctloop.monitor._settings import AlertSettings

    config = AlertSettings.from_mapping(settings.alerts)
    if config.digest_period is None:
        return None
    moment = _utc(now or datetime.now(UTC))
    records = workspace.alerts.list()
    last = [r for r in records if r.source == SOURCE and isinstance(r.details.get("digest"), dict)]
    since = _utc(datetime.fromisoformat(last[-1].details["digest"]["until"])) if last else None
    steps = [
        r
        for r in records
        if r.source != SOURCE
        and _step(r) in _LISTED
        and (since is None or _utc(r.created_at) >= since)
        and _utc(r.created_at) < moment
    ]
    if not steps:
        return None
    start = since or _utc(steps[0].created_at)
    if moment - start < config.digest_period:
        return None
    until = start + config.digest_period * ((moment - start) // config.digest_period)
    steps = [r for r in steps if _utc(r.created_at) < until]
    if not steps:
        return None
    listed = {step: [_entry(r) for r in steps if _step(r) == step] for step in _LISTED}
    cause = (
        f"{len(listed['opened'])} incident(s) opened, {len(listed['resolved'])} resolved "
        f"between {start.isoformat()} and {until.isoformat()}"
    )
    severities = {r.severity for r in steps if _step(r) == "opened"}
    severity = next((s for s in ("critical", "warning") if s in severities), "info")
    record = workspace.alerts.record(
        source=SOURCE,
        subject="ctloop",
        severity=severity,
        cause=cause,
        details={"digest": {"since": start.isoformat(), "until": until.isoformat(), **listed}},
        dedup_key=f"digest:{until.isoformat()}",
        report_artifact_id=None,
        cooldown_s=0,
    )
    assert record is not None  # no cooldown: always recorded
    return deliver(workspace, record, settings=settings)


def _step(record: AlertRecord) -> str | None:
    state = record.details.get("incident")
    return state.get("step") if isinstance(state, dict) else None


def _entry(record: AlertRecord) -> dict[str, Any]:
    from ctloop.monitor._incidents import features_of

    return {
        "key": record.dedup_key,
        "subject": record.subject,
        "severity": record.severity,
        "cause": record.cause,
        "features": list(features_of(record.details)),
        "at": _utc(record.created_at).isoformat(),
        "alert_id": record.id,
    }


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
