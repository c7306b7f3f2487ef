"""Alerts grouped into incidents: one open incident per model and kind, updated by
windows that repeat it, resolved by clean ones, delivered on open and resolve only."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ctloop.config import Settings
from ctloop.errors import MonitorError
from ctloop.monitor import AlertSettings, MonitorReport
from ctloop.monitor._alerts import raise_alerts
from ctloop.monitor._incidents import list_incidents
from ctloop.store.workspace import Workspace
from tests.monitor.conftest import Project
from tests.monitor.test_alerts import Receiver, free_port
from tests.monitor.test_cli import ctloop


def report(*drifted: tuple[str, float], degraded: float | None = None) -> MonitorReport:
    columns = [
        {"column": name, "drifted": True, "test": "psi", "statistic": value, "p_value": None}
        | {"threshold": 0.2}
        for name, value in drifted
    ]
    performance = None
    reasons: tuple[str, ...] = ()
    if degraded is not None:
        performance = {"metric": "auc", "value": 0.7 - degraded, "baseline": 0.7}
        performance |= {"drop": degraded, "degraded": True}
        reasons = (f"auc is {0.7 - degraded:.3g} against a baseline of 0.7",)
    verdict = "degraded" if degraded is not None else ("drift" if drifted else "ok")
    return MonitorReport(
        "flights",
        1,
        "a1",
        verdict,
        {"rows": 500},
        reasons=reasons,
        drift={"columns": columns} if columns else None,
        performance=performance,
    )


def configure(tmp_path: Path, alerts: dict[str, Any]) -> tuple[Workspace, Settings]:
    (tmp_path / "ctloop.yaml").write_text(yaml.safe_dump({"alerts": alerts}))
    return Workspace.in_memory(tmp_path / "artifacts"), Settings.load(tmp_path)


def test_a_repeating_cause_is_one_incident_delivered_on_open_and_resolve(
    home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "alerts.jsonl"
    workspace, settings = configure(tmp_path, {"sinks": [{"type": "file", "path": str(path)}]})
    windows = [
        report(("wind", 0.3)),
        report(("wind", 0.5), ("distance", 0.25)),
        report(("wind", 0.4)),
        report(),  # clean: both resolve
        report(degraded=0.08),
    ]
    delivered = [raise_alerts(workspace, w, None, settings=settings) for w in windows]

    assert [[a.dedup_key for a in d] for d in delivered] == [
        ["flights:drift"],
        [],  # distance drifts too: the open drift incident lists it, nothing is sent
        [],
        ["flights:drift"],  # resolved
        ["flights:degraded"],
    ]
    incidents = {(i.key, i.status): i for i in list_incidents(workspace, "flights")}
    drift = incidents["flights:drift", "resolved"]
    assert (drift.count, drift.worst, drift.clean_windows) == (3, 0.5, 1)
    assert drift.features == ("distance", "wind")
    assert drift.resolved_at is not None and drift.last_seen < drift.resolved_at
    degraded = incidents["flights:degraded", "open"]
    assert degraded.severity == "critical" and degraded.worst == pytest.approx(0.08)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    steps = [line["details"]["incident"]["step"] for line in lines]
    assert steps == ["opened", "resolved", "opened"]
    assert lines[1]["cause"].startswith("resolved: flights v1: drift in 'wind'")
    # every window is still an alert record, readable as before
    assert len(workspace.alerts.list(subject="flights")) == 5


def test_features_drifting_in_turn_reach_a_webhook_as_one_incident(
    home: Path, tmp_path: Path
) -> None:
    port = free_port()
    receiver = Receiver(port)
    try:
        url = f"http://127.0.0.1:{port}/hook"
        workspace, settings = configure(
            tmp_path, {"resolve_after": 2, "sinks": [{"type": "webhook", "url": url}]}
        )
        windows = [
            report(("wind", 0.3), ("temp", 0.4)),
            report(("distance", 0.25)),
            report(),  # one clean window of two: still open
            report(("dewp", 0.7), ("wind", 0.2)),
            report(),
            report(),
        ]
        for window in windows:
            raise_alerts(workspace, window, None, settings=settings)
    finally:
        receiver.stop()

    steps = [body["details"]["incident"]["step"] for body in receiver.received]
    assert steps == ["opened", "resolved"]
    assert [body["dedup_key"] for body in receiver.received] == ["flights:drift"] * 2
    assert set(receiver.received[0]["details"]["features"]) == {"temp", "wind"}
    [incident] = list_incidents(workspace, "flights")
    assert incident.status == "resolved" and incident.count == 3
    assert incident.features == ("dewp", "distance", "temp", "wind")
    assert incident.worst == pytest.approx(0.7)
    assert incident.to_dict()["features"] == ["dewp", "distance", "temp", "wind"]


def test_an_incident_resolves_after_the_clean_windows_asked_for(home: Path, tmp_path: Path) -> None:
    workspace, settings = configure(tmp_path, {"resolve_after": 2, "sinks": []})
    raise_alerts(workspace, report(("wind", 0.3)), None, settings=settings)
    raise_alerts(workspace, report(), None, settings=settings)
    [incident] = list_incidents(workspace)
    assert incident.status == "open" and incident.clean_windows == 1
    raise_alerts(workspace, report(("wind", 0.3)), None, settings=settings)  # back: reset
    raise_alerts(workspace, report(), None, settings=settings)
    assert list_incidents(workspace)[0].status == "open"
    raise_alerts(workspace, report(), None, settings=settings)
    [incident] = list_incidents(workspace)
    assert incident.status == "resolved" and incident.count == 2


def test_a_window_without_data_neither_repeats_nor_resolves(home: Path, tmp_path: Path) -> None:
    workspace, settings = configure(tmp_path, {"sinks": []})
    raise_alerts(workspace, report(("wind", 0.3)), None, settings=settings)
    empty = MonitorReport("flights", 1, "a1", "no-data", {"rows": 3})
    assert raise_alerts(workspace, empty, None, settings=settings) == ()
    assert [i.status for i in list_incidents(workspace)] == ["open"]


def test_resolve_after_must_be_a_positive_number_of_windows() -> None:
    with pytest.raises(MonitorError, match="resolve_after' is 0"):
        AlertSettings.from_mapping({"resolve_after": 0})


def test_ctloop_alerts_incidents_lists_them(project: Project, tmp_path: Path) -> None:
    settings = dataclasses.replace(project.settings, alerts={"sinks": []})
    raise_alerts(project.workspace, report(("wind", 0.3)), None, settings=settings)
    raise_alerts(project.workspace, report(("wind", 0.6)), None, settings=settings)

    listed = json.loads(ctloop(project, "alerts", "incidents", "--open", "--json").stdout)
    assert [(i["key"], i["count"], i["worst"]) for i in listed] == [("flights:drift", 2, 0.6)]
    text = ctloop(project, "alerts", "incidents").stdout
    assert "open" in text and "x2" in text and "drift in 'wind'" in text
