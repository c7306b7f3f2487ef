"""Runs, their executions, params, metrics and tags.

``GET /api/v1/runs`` pages newest first and filters by pipeline, status and trigger;
``GET /api/v1/runs/{id}`` answers the run with its params, latest metrics, tags and
executions in five queries however big the run is; a metric's history is downsampled to
``max_points`` (the first and last points are always kept).

>>> downsample([1, 2, 3, 4, 5], 3)
[1, 3, 5]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request

from ctloop.errors import CtloopError
from ctloop.server._deps import audit_write, needs, render, workspace_of
from ctloop.server._errors import BadRequestError, ConflictError
from ctloop.server._paging import MAX_LIMIT, page_of_runs
from ctloop.server._run_search import search_runs
from ctloop.store._keys import Role
from ctloop.store.compare import RunComparison, compare_runs
from ctloop.store.metadata import MAX_SEARCH_OFFSET, MetadataStore, metric_order
from ctloop.store.records import MetricRecord, RunRecord, TagRecord
from ctloop.store.statuses import RunStatus

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = [
    "compare",
    "downsample",
    "execution_detail",
    "execution_log",
    "metric_history",
    "run_detail",
    "runs_router",
    "start_resume",
]

T = TypeVar("T")
_log = logging.getLogger(__name__)
#: the most runs one comparison holds
MAX_COMPARED = 20
_STARTED_AFTER = (
    "only runs started later than this time (ISO 8601, UTC without a zone): poll with the "
    "newest started_at you hold to learn of new runs"
)


def downsample(points: Sequence[T], max_points: int) -> list[T]:
    """At most ``max_points`` of ``points``, evenly spread, first and last kept."""
    if len(points) <= max_points:
        return list(points)
    if max_points == 1:
        return [points[-1]]
    last = len(points) - 1
    picks = sorted({round(i * last / (max_points - 1)) for i in range(max_points)})
    return [points[i] for i in picks]


def latest_metrics(metrics: Sequence[MetricRecord]) -> dict[str, dict[str, Any]]:
    """Each metric key's latest value (highest step, then latest time) of the run itself
    or, when the run has none, of its executions."""
    latest: dict[str, MetricRecord] = {}
    for metric in metrics:
        held = latest.get(metric.key)
        if held is None or metric_order(metric) >= metric_order(held):
            latest[metric.key] = metric
    return {key: render(m) for key, m in sorted(latest.items())}


def runs_router() -> APIRouter:
    """The routes of runs and executions."""

    router = APIRouter(tags=["runs"])
    viewer, editor = Depends(needs(Role.VIEWER)), Depends(needs(Role.EDITOR))

    @router.get("/runs", dependencies=[viewer], summary="List runs, newest first")
    def list_runs(
        request: Request,
        pipeline: str | None = None,
        status: RunStatus | None = None,
        trigger: str | None = Query(None, description="runs started by this trigger"),
        cursor: str | None = None,
        limit: int = Query(100, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        return page_of_runs(
            workspace_of(request).metadata,
            cursor=cursor,
            limit=limit,
            keep=lambda run: trigger is None or run.trigger == trigger,
            pipeline=pipeline,
            status=None if status is None else str(status),
            render=render,
        )

    @router.get("/runs/search", dependencies=[viewer], summary="Search, sort and page runs")
    def search(
        request: Request,
        pipeline: str | None = None,
        status: RunStatus | None = None,
        trigger: str | None = None,
        user: str | None = Query(None, description="runs started by this user"),
        where: str | None = Query(
            None, description="conditions: auc > 0.7 and params.model = ridge"
        ),
        sort: str | None = Query(
            None, description="started_at, duration, metrics.KEY, params.KEY; -desc"
        ),
        metrics: str | None = Query(None, description="metric keys to return, comma-separated"),
        params: str | None = Query(None, description="parameters to return, comma-separated"),
        offset: int = Query(0, ge=0, le=MAX_SEARCH_OFFSET),
        limit: int = Query(50, ge=1, le=MAX_LIMIT),
        started_after: Annotated[datetime | None, Query(description=_STARTED_AFTER)] = None,
    ) -> dict[str, Any]:
        return search_runs(
            workspace_of(request).metadata,
            started_after=started_after,
            pipeline=pipeline,
            status=None if status is None else str(status),
            trigger=trigger,
            user=user,
            where=where,
            sort=sort,
            offset=offset,
            limit=limit,
            metrics=[k.strip() for k in (metrics or "").split(",") if k.strip()],
            params=[k.strip() for k in (params or "").split(",") if k.strip()],
        )

    @router.get("/runs/compare", dependencies=[viewer], summary="Compare runs side by side")
    def compare_route(
        request: Request,
        runs: str = Query(..., description="two to twenty run ids, comma-separated"),
    ) -> dict[str, Any]:
        return render(compare(workspace_of(request).metadata, runs))

    @router.get("/runs/{run_id}", dependencies=[viewer], summary="One run, all it recorded")
    def get_run(request: Request, run_id: str) -> dict[str, Any]:
        return run_detail(workspace_of(request).metadata, run_id)

    # ``key:path``: a key may hold slashes (``train/loss``)
    @router.get(
        "/runs/{run_id}/metrics/{key:path}", dependencies=[viewer], summary="A metric's history"
    )
    def get_metric_history(
        request: Request, run_id: str, key: str, max_points: int = Query(1000, ge=1, le=10_000)
    ) -> dict[str, Any]:
        return metric_history(workspace_of(request).metadata, run_id, key, max_points)

    @router.put("/runs/{run_id}/tags/{key}", summary="Set a tag of a run (editor)")
    def set_run_tag(
        request: Request,
        run_id: str,
        key: str,
        value: str = Body(..., embed=True, max_length=5000),
        caller: Any = editor,
    ) -> dict[str, Any]:
        store = workspace_of(request).metadata
        run = store.get_run(run_id)
        store.log_batch(tags=[TagRecord(run.id, key, value)])
        audit_write(request, caller, "run.tag.set", f"run {run.id}", {"key": key, "value": value})
        return {"run_id": run.id, "key": key, "value": value}

    @router.post("/runs/{run_id}/resume", status_code=202, summary="Resume a run (editor)")
    def resume(request: Request, run_id: str, caller: Any = editor) -> dict[str, Any]:
        run = start_resume(workspace_of(request), run_id)
        audit_write(request, caller, "run.resume", f"run {run.id}")
        return {"run_id": run.id, "status": "resuming"}

    @router.get(
        "/executions/{execution_id}", dependencies=[viewer], summary="An execution and its events"
    )
    def get_execution(request: Request, execution_id: str) -> dict[str, Any]:
        return execution_detail(workspace_of(request).metadata, execution_id)

    @router.get(
        "/executions/{execution_id}/log", dependencies=[viewer], summary="An execution's log"
    )
    def get_log(
        request: Request, execution_id: str, tail: int = Query(200, ge=1, le=100_000)
    ) -> dict[str, Any]:
        return execution_log(workspace_of(request), execution_id, tail)

    return router


def start_resume(workspace: Workspace, run_id: str) -> RunRecord:
    """Resume a failed run in the background, re-running only the steps that
    did not succeed (``POST /runs/{id}/resume``; ``ctloop resume RUN`` does the same in
    the foreground). The server must be able to import the run's pipeline: a reference it
    cannot load is a 400 naming it, a run still running or one that succeeded a 409."""
    import threading

    from ctloop.pipeline._loading import load_pipeline

    run = workspace.metadata.get_run(run_id)
    if run.status in (RunStatus.RUNNING, RunStatus.SUCCEEDED):
        raise ConflictError(f"run {run.id[:8]} is {run.status}; only a failed run can be resumed")
    try:
        load_pipeline(run.reference)
    except CtloopError as exc:
        raise BadRequestError(
            f"this server cannot load the pipeline {run.reference!r} of run {run.id[:8]} "
            f"({exc}); resume it with `ctloop resume {run.id[:8]}` where its code is",
            field="reference",
        ) from exc
    threading.Thread(
        target=_resume_in_background, args=(workspace, run.id), daemon=True, name="resume"
    ).start()
    return run


def _resume_in_background(workspace: Workspace, run_id: str) -> None:
    from ctloop.pipeline._runner import resume_run

    try:
        resume_run(run_id, workspace=workspace)
    except CtloopError as exc:  # recorded on the run itself; the log says it too
        _log.warning("resuming run %s ended: %s", run_id[:8], exc)


def execution_detail(store: MetadataStore, execution_id: str) -> dict[str, Any]:
    """An execution with the artifacts it read and wrote (``GET /executions/{id}``)."""
    execution = store.get_execution(execution_id)
    return {**render(execution), "events": render(store.events_of_execution(execution.id))}


def execution_log(workspace: Workspace, execution_id: str, tail: int = 200) -> dict[str, Any]:
    """The last ``tail`` lines of what an execution printed (empty when it kept no log)."""
    execution = workspace.metadata.get_execution(execution_id)
    text = ""
    if execution.log_uri:
        text = workspace.artifacts.read_object(execution.log_uri).decode(errors="replace")
    lines = text.splitlines()
    return {"execution_id": execution.id, "lines": lines[-tail:], "total_lines": len(lines)}


def compare(store: MetadataStore, runs: str | Sequence[str]) -> RunComparison:
    """Two to twenty runs side by side (``GET /runs/compare?runs=a,b``)."""
    refs = [r.strip() for r in ([runs] if isinstance(runs, str) else runs) for r in r.split(",")]
    refs = [r for r in refs if r]
    if len(refs) > MAX_COMPARED:
        raise BadRequestError(
            f"compare at most {MAX_COMPARED} runs at once; got {len(refs)}", field="runs"
        )
    return compare_runs(store, refs)


def run_detail(store: MetadataStore, run_id: str) -> dict[str, Any]:
    """A run with its params, latest metrics, tags and executions (``GET /runs/{id}``)."""
    run = store.get_run(run_id)
    return {
        **render(run),
        "params": {p.key: p.value for p in store.get_params(run.id) if p.execution_id is None},
        "metrics": latest_metrics(store.get_metrics(run.id)),
        "tags": _run_tags(store.get_tags(run.id)),
        "executions": render(store.list_executions(run.id)),
    }


def metric_history(
    store: MetadataStore, run_id: str, key: str, max_points: int = 1000
) -> dict[str, Any]:
    """A metric's history, downsampled to ``max_points`` (``GET /runs/{id}/metrics/{key}``)."""
    run = store.get_run(run_id)
    points = store.get_metrics(run.id, key)
    return {
        "run_id": run.id,
        "key": key,
        "count": len(points),
        "points": [_point(p) for p in downsample(points, max_points)],
    }


def _run_tags(tags: Sequence[TagRecord]) -> dict[str, str]:
    return {t.key: t.value for t in tags if t.execution_id is None}


def _point(metric: MetricRecord) -> dict[str, Any]:
    return {
        "step": metric.step,
        "value": render(metric.value),
        "timestamp": metric.timestamp.isoformat(),
    }
