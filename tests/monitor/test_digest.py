"""Alert digests: with ``alerts: digest`` a webhook on 127.0.0.1 hears once a period of
the incidents opened and resolved, and nothing while the period runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ctloop.errors import MonitorError
from ctloop.monitor import AlertSettings, deliver_pending
from ctloop.monitor._alerts import raise_alerts
from tests.monitor.test_alerts import Receiver, free_port
from tests.monitor.test_incidents import configure, report


def test_a_digest_sends_one_delivery_per_period_listing_what_opened_and_resolved(
    home: Path, tmp_path: Path
) -> None:
    port = free_port()
    receiver = Receiver(port)
    try:
        url = f"http://127.0.0.1:{port}/hook"
        workspace, settings = configure(
            tmp_path, {"digest": "1d", "sinks": [{"type": "webhook", "url": url}]}
        )
        delivered = [
            raise_alerts(workspace, window, None, settings=settings)
            for window in (report(("wind", 0.3)), report(), report(degraded=0.08))
        ]
        assert delivered == [(), (), ()]  # nothing is sent as it happens
        now = datetime.now(UTC)
        assert deliver_pending(workspace, settings=settings, now=now) == []
        assert receiver.received == []  # the day has not passed

        deliver_pending(workspace, settings=settings, now=now + timedelta(days=1, minutes=1))
        deliver_pending(workspace, settings=settings, now=now + timedelta(days=1, minutes=2))
    finally:
        receiver.stop()

    [body] = receiver.received  # one delivery for the day, however often it is asked
    digest = body["details"]["digest"]
    assert body["source"] == "digest" and body["severity"] == "critical"
    assert [(e["key"], e["features"]) for e in digest["opened"]] == [
        ("flights:drift", ["wind"]),
        ("flights:degraded", []),
    ]
    assert [e["key"] for e in digest["resolved"]] == ["flights:drift"]
    assert body["cause"].startswith("2 incident(s) opened, 1 resolved between")
    assert datetime.fromisoformat(digest["until"]) - datetime.fromisoformat(
        digest["since"]
    ) == timedelta(days=1)


def test_a_digest_period_must_be_a_positive_duration() -> None:
    with pytest.raises(MonitorError, match="'alerts: digest' 'soon' is not a duration"):
        AlertSettings.from_mapping({"digest": "soon"})
    with pytest.raises(MonitorError, match="'alerts: digest' is '0d'"):
        AlertSettings.from_mapping({"digest": "0d"})
