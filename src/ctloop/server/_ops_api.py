"""Monitoring history and data sets: what a model's monitoring showed window by window,
and which runs each data set version fed.

``GET /api/v1/monitoring/{model}`` answers the model's monitoring windows, oldest first:
each window's verdict, rows, the drift of every feature against the training data
(``skew``) and against the previous window (``drift``) with a ``severity`` (the test's
score over its threshold: 1 or more is drift), the metric against its baseline once labels
arrived, the attribution shift, the report artifacts, and the window's ``traffic`` read
from the prediction log (``predictions``, ``requests`` and the percentiles of their
latency, ``latency_ms``; see :mod:`ctloop.server._traffic`); with the alerts raised about
the model. ``GET /api/v1/triggers/declared`` answers every trigger ``ctloop.yaml``
declares (see :mod:`ctloop.server._declared_triggers`). ``GET /api/v1/data`` answers each
data set with its versions and the runs that read each version.

>>> severity({"test": "psi", "statistic": 0.4, "p_value": None, "threshold": 0.2})
2.0
>>> round(severity({"test": "ks", "statistic": 0.3, "p_value": 0.0001, "threshold": 0.01}), 2)
2.0
"""

from __future__ import annotations

import math
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Query, Request

from ctloop.errors import NotFoundError
from ctloop.server._deps import needs, render, workspace_of
from ctloop.server._traffic import window_traffic
from ctloop.store._keys import Role
from ctloop.store.statuses import RunStatus

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["data_sets", "monitoring_history", "ops_router", "severity"]

#: the pipeline the monitoring job runs as (``ctloop.monitor._job.PIPELINE_NAME``)
MONITOR_PIPELINE = "monitor"
#: the most windows one answer holds (the newest ones)
MAX_WINDOWS = 1000
#: severity shown for a p-value of 0 (or a distance far past its threshold)
MAX_SEVERITY = 10.0
_CACHE_SIZE = 4096
_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()


def ops_router() -> APIRouter:
    """The routes of monitoring history and data sets."""
    router = APIRouter(tags=["operations"], dependencies=[Depends(needs(Role.VIEWER))])

    @router.get("/monitoring/{model}", summary="A model's monitoring windows and alerts")
    def monitoring(
        request: Request,
        model: str,
        limit: int = Query(200, ge=1, le=MAX_WINDOWS, description="the newest windows kept"),
    ) -> dict[str, Any]:
        return render(monitoring_history(workspace_of(request), model, limit=limit))

    @router.get("/triggers/declared", summary="Every declared trigger: schedule, state, runs")
    def declared(request: Request) -> dict[str, Any]:
        from ctloop.server._declared_triggers import declared_triggers, project_triggers

        specs, error = project_triggers(getattr(request.app.state, "project_root", None))
        found = declared_triggers(workspace_of(request), specs, datetime.now(UTC))
        return {"items": render(found), "error": error, "next_cursor": None}

    @router.get("/data", summary="Data sets, their versions and the runs each version fed")
    def data(request: Request) -> dict[str, Any]:
        return {"items": render(data_sets(workspace_of(request))), "next_cursor": None}

    return router


def severity(column: Mapping[str, Any]) -> float:
    """How far a column's drift test is past its threshold: ``statistic / threshold``
    for a distance, ``log(p) / log(threshold)`` for a p-value; 1 or more is drift."""
    threshold = float(column.get("threshold") or 0.0)
    p_value = column.get("p_value")
    if p_value is not None:
        if not 0 < threshold < 1:
            return MAX_SEVERITY if column.get("drifted") else 0.0
        if p_value <= 0:
            return MAX_SEVERITY
        return min(MAX_SEVERITY, max(0.0, math.log(min(p_value, 1.0)) / math.log(threshold)))
    statistic = float(column.get("statistic") or 0.0)
    if threshold <= 0 or not math.isfinite(statistic):
        return MAX_SEVERITY if column.get("drifted") else 0.0
    return min(MAX_SEVERITY, max(0.0, statistic / threshold))


def monitoring_history(workspace: Workspace, model: str, *, limit: int = 200) -> dict[str, Any]:
    """The monitoring windows of ``model`` (the newest ``limit``, oldest first), the
    features they tested and the alerts about the model."""
    workspace.registry.get_model(model)  # an unknown model is a 404 that names it
    meta = workspace.metadata
    runs = [
        run
        for run in meta.list_runs(pipeline=MONITOR_PIPELINE, status=RunStatus.SUCCEEDED)
        if (run.parameters.get("request") or {}).get("model") == model
    ]
    windows = [w for w in (_window_of(workspace, run) for run in runs[:limit]) if w]
    windows.sort(key=lambda w: (w["end"] or "", w["run_id"]))
    windows = [dict(w) for w in windows]  # the cached summaries stay as they were read
    for window, traffic in zip(windows, window_traffic(workspace, model, windows), strict=True):
        window["traffic"] = traffic
    features: dict[str, None] = {}
    for found in windows:
        features.update(dict.fromkeys(found["skew"]))
        features.update(dict.fromkeys(found["drift"]))
    return {
        "model": model,
        "features": list(features),
        "windows": windows,
        "alerts": workspace.alerts.list(model),
    }


def data_sets(workspace: Workspace) -> list[dict[str, Any]]:
    """Each data set, its versions (newest first) and the runs that read each version."""
    meta = workspace.metadata
    versions = meta.list_data_versions()
    artifacts = {a.id: a for a in meta.list_artifacts(sorted({v.artifact_id for v in versions}))}
    found: dict[str, list[dict[str, Any]]] = {}
    for version in versions:
        artifact = artifacts.get(version.artifact_id)
        found.setdefault(version.name, []).append(
            {
                "version": version.version,
                "artifact_id": version.artifact_id,
                "created_at": version.created_at,
                "source": version.source,
                "message": version.message,
                "files": len(artifact.files) if artifact else 0,
                "size": artifact.size if artifact else 0,
                "digest": artifact.digest if artifact else "",
                "runs": _runs_reading(workspace, version.artifact_id),
            }
        )
    return [
        {"name": name, "versions": sorted(items, key=lambda v: -v["version"])}
        for name, items in sorted(found.items())
    ]


def _runs_reading(workspace: Workspace, artifact_id: str) -> list[dict[str, Any]]:
    """The runs with a step that read ``artifact_id``, newest first."""
    meta = workspace.metadata
    run_ids: dict[str, None] = {}
    for event in meta.events_of_artifact(artifact_id):
        if event.kind == "input":
            run_ids[meta.get_execution(event.execution_id).run_id] = None
    runs = [meta.get_run(run_id) for run_id in run_ids]
    runs.sort(key=lambda r: r.started_at, reverse=True)
    return [
        {"run_id": r.id, "pipeline": r.pipeline, "status": r.status, "started_at": r.started_at}
        for r in runs
    ]


def _window_of(workspace: Workspace, run: Any) -> dict[str, Any] | None:
    """The window a monitoring run judged, read from its report (kept by run id: a
    succeeded run's outputs and a stored artifact never change, so a page of windows
    costs one query once each report was read)."""
    with _cache_lock:
        cached = _cache.get(run.id)
        if cached is not None:
            _cache.move_to_end(run.id)
            return cached
    outputs = _report_outputs(workspace, run.id)
    report_id = outputs.get("report")
    if report_id is None:
        return None
    found = _summarise(_load_report(workspace, report_id))
    found.update(run_id=run.id, report_id=report_id, html_id=outputs.get("html"))
    found["on"] = ((run.parameters.get("request") or {}).get("monitoring") or {}).get(
        "window_on"
    ) or "timestamp"
    with _cache_lock:
        _cache[run.id] = found
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return found


def _report_outputs(workspace: Workspace, run_id: str) -> dict[str, str]:
    """``report`` and ``html`` artifact ids of a monitoring run's last step."""
    meta = workspace.metadata
    for execution in meta.list_executions(run_id):
        if execution.step == "monitor_report":
            return {
                e.name: e.artifact_id
                for e in meta.events_of_execution(execution.id)
                if e.kind == "output"
            }
    return {}


def report_html_id(workspace: Workspace, report_id: str) -> str:
    """The HTML page stored beside the monitoring report ``report_id``."""
    for event in workspace.metadata.events_of_artifact(report_id):
        if event.kind == "output" and event.name == "report":
            execution = workspace.metadata.get_execution(event.execution_id)
            if execution.step == "monitor_report":
                html = _report_outputs(workspace, execution.run_id).get("html")
                if html:
                    return html
    raise NotFoundError(
        f"artifact {report_id} is not a monitoring report with an HTML page; "
        "open a window of the monitoring page"
    )


def load_html(workspace: Workspace, artifact_id: str) -> str:
    """The text of a stored HTML page (a string artifact)."""
    from ctloop.artifacts import load_value

    record = workspace.metadata.get_artifact(artifact_id)
    value = load_value(record, workspace.artifacts, cache_dir=_cache_dir())
    if not isinstance(value, str):
        raise NotFoundError(f"artifact {artifact_id} is not an HTML page")
    return value


def _load_report(workspace: Workspace, report_id: str) -> Any:
    from ctloop.artifacts import load_value

    record = workspace.metadata.get_artifact(report_id)
    return load_value(record, workspace.artifacts, cache_dir=_cache_dir())


def _cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / "ctloop-server-blobs"


def _summarise(report: Any) -> dict[str, Any]:
    """What the pages and the API show of one ``MonitorReport``."""
    window = dict(report.window or {})
    performance = report.performance or {}
    attribution = report.attribution or {}
    return {
        "version": report.version,
        "verdict": report.verdict,
        "reasons": list(report.reasons),
        "start": window.get("start"),
        "end": window.get("end"),
        "spec": window.get("spec"),
        "rows": window.get("rows"),
        "drifted_features": list(report.drifted_features),
        "skew": _columns(report.skew),
        "drift": _columns(report.drift),
        "performance": {
            k: performance.get(k)
            for k in ("metric", "value", "baseline", "interval", "degraded", "rows")
        }
        if performance
        else None,
        "attribution": {
            k: attribution.get(k) for k in ("distance", "threshold", "drifted", "changed")
        }
        if attribution
        else None,
    }


def _columns(part: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    found = {}
    for column in (part or {}).get("columns", ()):
        found[str(column["column"])] = {
            "test": column.get("test"),
            "statistic": column.get("statistic"),
            "p_value": column.get("p_value"),
            "threshold": column.get("threshold"),
            "drifted": bool(column.get("drifted")),
            "severity": severity(column),
        }
    return found
