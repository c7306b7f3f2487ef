"""``run_monitor`` end to end: the pipeline run, the stored report, lineage, alerts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ctloop.config import Settings
from ctloop.errors import MonitorError
from ctloop.monitor import run_monitor
from ctloop.store._lineage import upstream
from ctloop.store.workspace import Workspace
from tests.monitor.conftest import END, Project, make_rows, training

DAY = timedelta(days=1)


def test_stable_day_is_ok_and_the_report_has_lineage_to_the_model(project: Project) -> None:
    project.log(make_rows(400, 10), END - 2 * DAY, DAY, labels=True)
    project.log(make_rows(400, 11), END - DAY, DAY, labels=True)

    result = run_monitor(project.workspace, "flights", "1d", end=END, trigger="schedule")

    assert result.verdict == "ok", result.report.reasons
    assert result.report.window["rows"] == 400
    assert result.report.performance is not None and result.report.drift is not None
    assert result.alerts == ()
    meta = project.workspace.metadata
    assert meta.get_run(result.run_id).trigger == "schedule"
    assert meta.get_artifact(result.report_artifact_id).properties["record_type"] == "MonitorReport"
    assert result.report.performance["baseline"] == project.evaluation.metrics["auc"]
    ancestors = {node.id for node in upstream(meta, result.report_artifact_id).nodes.values()}
    assert project.model_artifact_id in ancestors
    batches = project.workspace.logs.predictions("flights")
    assert len(batches) == 2 and {b.artifact_id for b in batches} <= ancestors


def test_drifted_feature_is_named_and_alerted(project: Project) -> None:
    project.log(make_rows(400, 10), END - 2 * DAY, DAY, labels=False)
    project.log(make_rows(400, 11, shift=1.5), END - DAY, DAY, labels=False)

    result = run_monitor(project.workspace, "flights", "1d", end=END)

    assert result.verdict == "drift"
    assert result.report.drifted_features[0] == "signal"
    assert "weak" not in result.report.drifted_features
    # one drift incident, opened (and delivered) once, listing every drifted feature
    [alert] = result.alerts
    assert alert.dedup_key == "flights:drift"
    assert sorted(alert.details["features"]) == sorted(result.report.drifted_features)


def test_empty_window_is_no_data_without_alerts(project: Project) -> None:
    project.log(make_rows(400, 10, shift=3.0), END - 5 * DAY, DAY, labels=False)

    result = run_monitor(project.workspace, "flights", "1d", end=END)

    assert result.verdict == "no-data"
    assert result.report.window["rows"] == 0
    assert result.alerts == ()


def test_labels_show_degradation_against_the_evaluation(project: Project) -> None:
    window = make_rows(400, 12)
    window["label"] = 1 - window["label"]  # the world turned: the model is now wrong
    project.log(window, END - DAY, DAY, labels=True)

    result = run_monitor(project.workspace, "flights@1", "1d", end=END)

    assert result.verdict == "degraded"
    perf = result.report.performance
    assert perf["metric"] == "auc" and perf["value"] < 0.5 < perf["baseline"]
    assert [a.severity for a in result.alerts][:1] == ["critical"]


def test_explicit_baseline_and_request_window(project: Project) -> None:
    project.log(make_rows(700, 13), END - DAY, DAY, labels=True)

    result = run_monitor(project.workspace, "flights", "300", end=END, baseline={"auc": 0.999})

    assert result.report.window["rows"] == 300
    assert result.report.drift is not None  # the 300 requests before are the previous window
    perf = result.report.performance
    assert perf["baseline"] == 0.999
    assert perf["drop"] == pytest.approx(0.999 - perf["value"])
    assert result.verdict == "ok", result.report.reasons


def test_monitoring_settings_come_from_ctloop_yaml(project: Project) -> None:
    project.log(make_rows(400, 14, shift=1.5), END - DAY, DAY, labels=False)
    config = project.home.parent / "ctloop.yaml"
    config.write_text("monitoring:\n  features:\n    signal: {ignore: true}\n")

    result = run_monitor(project.workspace, "flights", "1d", end=END)

    assert "signal" not in result.report.drifted_features
    config.write_text("monitoring:\n  min_row: 10\n")
    with pytest.raises(MonitorError, match="min_row"):
        run_monitor(project.workspace, "flights", "1d", end=END)


def test_the_job_runs_on_an_in_memory_workspace(home: Path, tmp_path: Path) -> None:
    with Workspace.in_memory(tmp_path / "artifacts") as workspace:
        trained = training.run(workspace=workspace)
        artifact_id = trained.outputs["train_and_evaluate"]["model"].id
        workspace.registry.register_version("flights", artifact_id, run_id=trained.run_id)
        model, evaluation = (trained.load("train_and_evaluate", o) for o in ("model", "evaluation"))
        logged = Project(home, Settings.load(), workspace, model, artifact_id, evaluation)
        logged.log(make_rows(400, 10), END - 2 * DAY, DAY, labels=True)
        logged.log(make_rows(400, 11, shift=1.5), END - DAY, DAY, labels=True)

        result = run_monitor(workspace, "flights", "1d", end=END)

        assert result.verdict == "drift" and result.report.drifted_features[0] == "signal"
        assert workspace.metadata.get_run(result.run_id).pipeline == "monitor"
        recorded = [a.dedup_key for a in workspace.alerts.list()]
        assert recorded == [a.dedup_key for a in result.alerts] and recorded
