"""The monitoring job: a ctloop pipeline run per window, and ``run_monitor`` to start it.

Steps: ``load_window`` → ``window_statistics`` → ``skew_and_drift`` → ``model_performance``
→ ``monitor_report``. The run is recorded like any other (with its trigger), the report is
a ``MonitorReport`` artifact, and lineage links it to the model version's artifact and the
prediction-log batches it read. The job reads and writes the workspace it is given: the
run is recorded there and its steps reach it with
:func:`~ctloop.pipeline.tracking.current_workspace`.

>>> result = run_monitor(Workspace.open(), "flights", "1d")  # doctest: +SKIP
>>> result.verdict, result.report.drifted_features  # doctest: +SKIP
('drift', ('distance',))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import MonitorError, RegistryError
from ctloop.monitor import _analysis as analysis
from ctloop.monitor._report import MonitorReport
from ctloop.monitor._settings import MonitorSettings
from ctloop.monitor._window import logged_batches, read_logged, split_window, window_bounds
from ctloop.pipeline import pipeline, step
from ctloop.pipeline.tracking import current_home, current_workspace

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.config import Settings
    from ctloop.data import DatasetStatistics
    from ctloop.store._operations_records import AlertRecord
    from ctloop.store.registry import ModelVersion
    from ctloop.store.workspace import Workspace

PIPELINE_NAME = "monitor"


@dataclass(frozen=True)
class MonitorResult:
    """What one monitoring run found: the report, its verdict (``ok``, ``drift``,
    ``degraded`` or ``no-data``), the run, the report artifact and the alerts recorded
    (de-duplicated ones left out)."""

    report: MonitorReport
    verdict: str
    run_id: str
    alerts: tuple[AlertRecord, ...] = field(default=())
    report_artifact_id: str = ""


def run_monitor(
    workspace: Workspace,
    model: str,
    window: str,
    end: datetime | str | None = None,
    trigger: str = "manual",
    *,
    baseline: Mapping[str, float] | None = None,
    data: str | Path | None = None,
    settings: Settings | None = None,
    alert: bool = True,
) -> MonitorResult:
    """Monitor ``model`` (``NAME``: its champion, else its latest version; or
    ``NAME@ALIAS`` / ``NAME@VERSION``) of ``workspace`` over ``window`` ending at ``end``
    (default now).

    ``baseline`` gives the metric values to hold the model to (default: the Evaluation of
    the run that made the version); ``data`` a Parquet file of logged predictions to read
    instead of the prediction log. With ``alert`` a drift or degradation records alerts and
    sends them to the sinks of ``alerts:``. ``settings`` give ``monitoring:`` and
    ``alerts:`` (default: ``ctloop.yaml``).

    >>> run_monitor(workspace, "flights", "1d", end="2026-01-02T00:00:00Z").verdict  # doctest: +SKIP
    'ok'
    """
    from ctloop.config import Settings
    from ctloop.pipeline._runner import run_pipeline

    settings = settings or Settings.load()
    MonitorSettings.from_mapping(settings.monitoring)  # a bad setting fails before the run
    version = _resolve_version(workspace, model)
    found_baseline, attribution = _training_baseline(workspace, version, settings.home / "cache")
    request = {
        "model": version.model,
        "version": version.version,
        "model_artifact_id": version.artifact_id,
        "bounds": window_bounds(window, end),
        "data": str(data) if data is not None else None,
        "baseline": dict(baseline) if baseline is not None else found_baseline,
        "reference_attribution": attribution,
        "monitoring": dict(settings.monitoring),
    }
    result = run_pipeline(
        monitor, {"request": request}, trigger=trigger, settings=settings, workspace=workspace
    )
    _link_inputs(workspace, result.run_id, request)
    report = result.load("monitor_report", "report")
    report_id = result.outputs["monitor_report"]["report"].id
    alerts: tuple[AlertRecord, ...] = ()
    if alert and report.verdict != "no-data":  # a clean window may resolve an incident
        from ctloop.monitor._alerts import raise_alerts

        alerts = raise_alerts(workspace, report, report_id, settings=settings)
    return MonitorResult(report, report.verdict, result.run_id, alerts, report_id)


# -- the pipeline ----------------------------------------------------------------------


@step(cache=False, outputs=("current", "previous", "reference"))
def load_window(request: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The window's and the previous window's rows, and the training statistics."""
    from ctloop.data import DatasetStatistics

    workspace = current_workspace()
    frame = read_logged(workspace, request)
    current, previous = split_window(frame, request["bounds"], _settings(request).window_on)
    stats = _load_model(workspace, request).training_statistics
    reference = DatasetStatistics.from_dict(stats) if stats else DatasetStatistics(0, ())
    return current.reset_index(drop=True), previous.reset_index(drop=True), reference


@step(outputs=("current_statistics", "previous_statistics"))
def window_statistics(current: Any, previous: Any, request: dict[str, Any]) -> tuple[Any, Any]:
    """Mergeable statistics of both windows' features and predictions."""
    features = _features(current_workspace(), request)
    return (
        analysis.window_statistics(current, features),
        analysis.window_statistics(previous, features),
    )


@step
def skew_and_drift(
    current_statistics: DatasetStatistics,
    previous_statistics: DatasetStatistics,
    reference: DatasetStatistics,
    request: dict[str, Any],
    current: Any = None,
) -> dict[str, Any]:
    """Skew against the training statistics and drift against the previous window, of
    the features that do not index time, weighed by the model's importance shares."""
    skew, drift = analysis.weighed_comparisons(
        current,
        current_statistics,
        reference=reference,
        previous=previous_statistics,
        features=_features(current_workspace(), request),
        importance=request.get("reference_attribution"),
        settings=_settings(request),
    )
    return {"skew": skew, "drift": drift}


@step
def model_performance(current: pd.DataFrame, request: dict[str, Any]) -> dict[str, Any]:
    """The metric on the labelled rows against the baseline, and attribution shift."""
    model = _load_model(current_workspace(), request)
    settings = _settings(request)
    if len(current) < settings.min_rows:
        return {"performance": None, "attribution": None}
    found, attribution = analysis.judge_model(
        current,
        features=list(model.signature.input_names),
        model=model,
        task=model.task,
        baseline=request["baseline"],
        reference_attribution=request["reference_attribution"],
        settings=settings,
    )
    return {"performance": found, "attribution": attribution}


@step(outputs=("report", "html"))
def monitor_report(
    current: pd.DataFrame,
    comparisons: dict[str, Any],
    judged: dict[str, Any],
    current_statistics: DatasetStatistics,
    reference: DatasetStatistics,
    request: dict[str, Any],
) -> tuple[MonitorReport, str]:
    """The ``MonitorReport`` and its HTML page."""
    from ctloop.monitor._html import render_monitor_report

    bounds = request["bounds"]
    report = analysis.build_report(
        len(current),
        identity={
            "model": request["model"],
            "version": request["version"],
            "model_artifact_id": request["model_artifact_id"],
            "window": {k: bounds[k] for k in ("spec", "start", "end", "requests")},
            "previous_window": {"start": bounds["previous_start"], "end": bounds["start"]},
        },
        parts={**comparisons, **judged},
        statistics={"current": current_statistics, "reference": reference},
        settings=_settings(request),
    )
    return report, render_monitor_report(report)


@pipeline(name=PIPELINE_NAME)
def monitor(request: dict[str, Any]) -> None:
    """Judge one window of a model version's logged predictions."""
    current, previous, reference = load_window(request)
    current_stats, previous_stats = window_statistics(current, previous, request)
    comparisons = skew_and_drift(current_stats, previous_stats, reference, request, current)
    judged = model_performance(current, request)
    monitor_report(current, comparisons, judged, current_stats, reference, request)


# -- helpers -----------------------------------------------------------------------------


def _settings(request: Mapping[str, Any]) -> MonitorSettings:
    return MonitorSettings.from_mapping(request.get("monitoring") or {})


def _features(workspace: Workspace, request: Mapping[str, Any]) -> list[str]:
    return list(_load_model(workspace, request).signature.input_names)


def _load_model(workspace: Workspace, request: Mapping[str, Any]) -> Any:
    """The Model artifact of the monitored version."""
    from ctloop.artifacts import load_value

    record = workspace.metadata.get_artifact(request["model_artifact_id"])
    return load_value(record, workspace.artifacts, cache_dir=current_home() / "cache")


def _resolve_version(workspace: Workspace, model: str) -> ModelVersion:
    """``NAME@X`` as given; a bare ``NAME`` means its champion, else its latest version."""
    registry = workspace.registry
    if "@" not in model:
        try:
            return registry.resolve(f"{model}@champion")
        except RegistryError:
            pass
    try:
        return registry.resolve(model)
    except RegistryError as exc:
        raise MonitorError(
            f"cannot monitor {model!r}: {exc} Register the model with `ctloop models register`."
        ) from exc


def _training_baseline(
    workspace: Workspace, version: ModelVersion, cache_dir: Path
) -> tuple[dict[str, float], dict[str, float] | None]:
    """Metrics and attribution shares of the Evaluation made in the version's run, else
    the run's logged metrics (last value of each) and no attributions."""
    from ctloop.artifacts import load_value
    from ctloop.monitor._checks import shares

    if version.run_id is None:
        return {}, None
    meta = workspace.metadata
    for execution in meta.list_executions(version.run_id):
        for event in meta.events_of_execution(execution.id):
            artifact = meta.get_artifact(event.artifact_id)
            if event.kind != "output" or record_type(artifact) != "Evaluation":
                continue
            evaluation = load_value(artifact, workspace.artifacts, cache_dir=cache_dir)
            metrics = {k: float(v) for k, v in evaluation.metrics.items() if v is not None}
            found = {a.feature: a.mean_drop for a in evaluation.attributions}
            return metrics, (shares(found) if found else None)
    return {m.key: float(m.value) for m in meta.get_metrics(version.run_id)}, None


def record_type(artifact: Any) -> str:
    """An artifact's record type (``MonitorReport``, ``Evaluation``) or else its type."""
    return str(artifact.properties.get("record_type") or artifact.type)


def _link_inputs(workspace: Workspace, run_id: str, request: Mapping[str, Any]) -> None:
    """Record the model artifact and the prediction-log batches as inputs of the run's
    ``load_window`` execution, so lineage walks from the report to them."""
    from ctloop.store.records import EventRecord

    meta = workspace.metadata
    execution = next(e for e in meta.list_executions(run_id) if e.step == "load_window")
    events = [EventRecord(execution.id, request["model_artifact_id"], "input", "model")]
    known = {a.id for a in meta.list_artifacts(logged_batches(workspace, request))}
    events += [
        EventRecord(execution.id, artifact_id, "input", f"predictions_{i}")
        for i, artifact_id in enumerate(sorted(known))
    ]
    meta.add_events(events)
