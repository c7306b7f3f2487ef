"""GET /api/v1/alerts/incidents lists the alerts grouped into incidents."""

from __future__ import annotations

import dataclasses
from typing import Any

from ctloop.config import Settings
from ctloop.monitor._alerts import raise_alerts
from ctloop.store.workspace import Workspace
from tests.monitor.test_incidents import report


def test_the_incident_list_pages_incidents_and_filters_by_status(
    memory_app: tuple[Any, Workspace, dict[str, str]], tmp_path: Any
) -> None:
    client, workspace, keys = memory_app
    settings = dataclasses.replace(Settings.load(tmp_path), alerts={"sinks": []})
    windows = (
        report(("wind", 0.3)),
        report(("wind", 0.4), ("distance", 0.3)),
        report(),  # a clean window resolves the drift incident
        report(degraded=0.1),
        report(degraded=0.12),
    )
    for window in windows:
        raise_alerts(workspace, window, None, settings=settings)
    viewer = {"Authorization": f"Bearer {keys['viewer']}"}

    page = client.get("/api/v1/alerts/incidents", headers=viewer).json()
    assert [(i["key"], i["status"], i["count"]) for i in page["items"]] == [
        ("flights:drift", "resolved", 2),
        ("flights:degraded", "open", 2),
    ]
    opened = client.get("/api/v1/alerts/incidents?status=open", headers=viewer).json()
    assert [i["key"] for i in opened["items"]] == ["flights:degraded"]
    bad = client.get("/api/v1/alerts/incidents?status=closed", headers=viewer)
    assert bad.status_code == 422
