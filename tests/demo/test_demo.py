"""The demo's pieces: its ctloop.yaml wires the decay trigger on event-time windows, its
summary counts incidents next to real degradations, its report renders."""

from __future__ import annotations

from pathlib import Path

import yaml

from ctloop.demo._loop import DemoConfig, ReplayClock, _fresh_workdir, week_start
from ctloop.demo._replay import request_ids
from ctloop.demo._report import auc_chart, write_report
from ctloop.demo._summary import DemoSummary, WeekResult, summarise
from ctloop.monitor import AlertSettings, MonitorSettings
from ctloop.store._triggers import FiringClaim
from ctloop.store.workspace import Workspace
from ctloop.triggers import pipeline_specs


def test_the_demo_settings_retrain_by_the_drift_policy(tmp_path: Path) -> None:
    config = DemoConfig(example=Path("examples/flights"), workdir=tmp_path / "work")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "stale.txt").write_text("from an earlier run")
    workdir = _fresh_workdir(config)
    assert not (workdir / "stale.txt").exists() and (workdir / "landing").is_dir()
    settings = yaml.safe_load((workdir / "ctloop.yaml").read_text())
    retrain = {p.name: p for p in pipeline_specs(settings["pipelines"])}["flights-retrain"]
    decay, manual = retrain.triggers
    assert decay.kind == "monitor" and decay.source["on"] == ["degraded", "drift"]
    assert decay.source["model"] == "flights" and manual.kind == "manual"
    # a week of event time, judged as the week it is about
    assert decay.source["window"] == "1w"
    monitoring = MonitorSettings.from_mapping(settings["monitoring"])
    assert monitoring.window_on == "event_time"
    assert (monitoring.allowed_drop, monitoring.drop_is, monitoring.confidence) == (
        0.03, "absolute", 0.95,
    )  # fmt: skip
    assert monitoring.drift_importance == 0.25 and monitoring.canary["min_rows"] == 150
    alerts = AlertSettings.from_mapping(settings["alerts"])
    assert alerts.resolve_after == 2 and alerts.sinks[0]["type"] == "file"
    release = retrain.parameters
    assert (release["release_as"], release["canary_traffic"]) == ("canary", 30)
    # `ctloop replay`'s built-in drift policy: sliding:12w, gate allowed_drop 0.005, refit
    assert (release["weeks"], release["max_drop"], release["refit_after_gate"]) == (
        12, 0.005, True,
    )  # fmt: skip
    assert release["gate_slices"] is False  # the overall AUC, as the replay gates


def _summary(tmp_path: Path) -> DemoSummary:
    weeks = [
        WeekResult(9, "2013-03-05", 1200, 0.74, 0.74, [1], 0),
        WeekResult(
            10,
            "2013-03-12",
            1280,
            0.62,
            0.70,
            [1, 2],
            0,
            ["champion v1 → v2 <fast>"],
            champion=1,
            champion_auc=0.62,
            baseline=0.66,
            degraded=True,
        ),
    ]
    alerts = [{"created_at": "2013-03-12T00:00:00", "severity": "warning", "cause": "drift"}]
    firings = [
        {
            "trigger": "flights-retrain/decay",
            "kind": "monitor",
            "status": "succeeded",
            "run_id": "abc",
            "reason": "monitor says degraded",
            "outcome": "rejected",
            "outcome_text": "rejected by the gate: overall: auc may drop by 0.03",
            "data": "flights@3: 2013-01-08 … 2013-03-04 (56 spans)",
        },
        {
            "trigger": "flights-ingest/new-data",
            "kind": "new_spans",
            "status": "succeeded",
            "run_id": "def",
            "reason": "source 'flights' version 3: 7 new span(s)",
            "outcome": "ingested",
            "outcome_text": "ingested: source 'flights' version 3: 7 new span(s)",
            "data": "flights@3: 2013-02-26 … 2013-03-04 (7 spans)",
        },
    ]
    deployments = [
        {"created_at": "2013-03-12T00:00:00", "action": "canary", "by": "me", "reason": "v2"},
        {"created_at": "2013-03-19T00:00:00", "action": "promote", "by": "monitor", "reason": "ok"},
    ]
    incidents = [
        {"kind": "degraded", "cause": "auc is 0.62", "status": "open", "windows": 1, "worst": 0.05}
    ]
    return DemoSummary(
        weeks, 1, 1, alerts, firings, tmp_path / "report.html", 12.0, deployments, incidents
    )


def test_the_report_shows_every_week_firing_and_alert_escaped(tmp_path: Path) -> None:
    summary = _summary(tmp_path)
    path = write_report(summary, tmp_path / "report.html")
    html = path.read_text()
    assert round(summary.mean_auc("static"), 6) == 0.68
    assert round(summary.mean_auc("served"), 6) == 0.72
    assert "<b>0.6800</b>" in html and "<b>0.7200</b>" in html
    assert "champion v1 → v2 &lt;fast&gt;" in html and "<fast>" not in html
    assert "flights-retrain/decay" in html and "monitor says degraded" in html
    assert "rejected by the gate: overall: auc may drop by 0.03" in html
    assert "<td>flights@3: 2013-01-08 … 2013-03-04 (56 spans)</td>" in html
    assert html.count("<polyline") == 2 and not list(tmp_path.glob("*.tmp"))
    assert "margin <b>+0.0400</b>" in html
    assert "v1 0.620 / 0.660 degraded" in html
    assert "<td>promote</td><td>monitor</td>" in html
    for line in summary.lines():
        assert line in html


def test_the_summary_lines_say_margin_outcomes_incidents_and_real_degradations(
    tmp_path: Path,
) -> None:
    margin, retraining, incidents, data = _summary(tmp_path).lines()
    assert margin == (
        "mean weekly AUC over 2 weeks: static 0.6800, the loop 0.7200 (margin +0.0400)"
    )
    assert retraining == (
        "retraining: 1 fired; 0 released as canaries (1 promoted, 0 rolled back), "
        "1 rejected by the gate, 0 failed"
    )
    assert incidents == (
        "incidents opened: 1 (degraded 1); the served model really degraded in 1 week(s) "
        "(10); 1 alert records"
    )
    assert data == (
        "data: 1 new-data run(s) on source flights; retrainings trained on "
        "flights@3: 2013-01-08 … 2013-03-04 (56 spans) (rejected)"
    )


def test_the_replay_clock_ends_windows_at_the_week_about_to_be_served() -> None:
    clock = ReplayClock()
    clock.week = 9
    assert clock() == week_start(9) and clock().isoformat() == "2013-03-05T00:00:00+00:00"
    assert (week_start(10) - week_start(9)).days == 7


def test_the_chart_puts_the_better_week_higher() -> None:
    svg = auc_chart(_summary(Path()).weeks)
    served = svg.split('stroke="#1f6fd1"')[1].split('points="')[1].split('"')[0]
    (x9, y9), (x10, y10) = (tuple(map(float, p.split(","))) for p in served.split())
    assert x10 > x9 and y10 > y9  # AUC 0.70 < 0.74: lower on the page is a larger y


def test_request_ids_name_the_week() -> None:
    assert request_ids(2, week=40) == ["w40-0", "w40-1"]


def test_the_summary_counts_what_the_workspace_recorded(tmp_path: Path) -> None:
    workspace = Workspace.open(f"sqlite:///{tmp_path / 'm.db'}", artifacts=str(tmp_path / "a"))
    workspace.alerts.record(
        source="monitor", subject="flights", severity="critical", cause="auc dropped",
        details={}, dedup_key="flights:degraded:auc",
    )  # fmt: skip
    claim = FiringClaim("flights-retrain/decay", "flights-retrain", "monitor", "m:1", "degraded")
    workspace.triggers.claim(claim)
    for action, by in (("deploy", "me"), ("canary", "me"), ("promote", "monitor")):
        workspace.deployments.record(
            name="flights", model="flights", action=action, state={}, reason=action, user=by
        )
    weeks = [WeekResult(9, "2013-03-05", 1200, 0.74, 0.74, [1], 0)]

    summary = summarise(workspace, weeks, 3.0)

    assert [a["cause"] for a in summary.alerts] == ["auc dropped"]
    assert summary.incidents == []  # recorded without an incident step: no incident
    assert [f["trigger"] for f in summary.firings] == ["flights-retrain/decay"]
    assert (summary.retrains, summary.promotions, summary.count("canary")) == (1, 1, 1)
    assert [d["by"] for d in summary.deployments] == ["me", "me", "monitor"]


def test_requests_carry_each_flight_s_scheduled_departure() -> None:
    import pandas as pd

    from ctloop.demo._replay import scheduled_times
    from ctloop.serve._event_time import parse_event_time

    flights = pd.DataFrame(
        {"date": pd.to_datetime(["2013-03-05 05:00", "2013-03-11 23:00"]),
         "sched_dep_time": [515, 2359]}
    )  # fmt: skip
    times = scheduled_times(flights)
    assert times == ["2013-03-05T05:15:00", "2013-03-11T23:59:00"]
    # the server reads them as UTC: both fall in week 9 (5 to 12 March)
    seconds = [parse_event_time(t, "X-Event-Time") for t in times]
    assert all(week_start(9).timestamp() <= t < week_start(10).timestamp() for t in seconds)


def test_an_event_line_prints_its_brackets() -> None:
    from rich.console import Console

    from ctloop.demo._loop import _print_week

    console = Console(record=True, width=300)
    week = WeekResult(9, "2013-03-05", 1200, 0.74, 0.74, [1], 0, ["retrain (data: [flights@3])"])
    _print_week(console, week)
    assert "retrain (data: [flights@3])" in console.export_text()
