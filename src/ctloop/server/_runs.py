"""Runs, their executions, params, metrics and tags.

``GET /api/v1/runs`` pages newest first and filters by pipeline, status and trigger;
``GET /api/v1/runs/{id}`` answers the run with its params, latest metrics, tags and
executions in five queries however big the run is; a metric's history is downsampled to
``max_points`` (the first and last points are always kept).

>>> downsample([1, 2, 3, 4, 5], 3)
[1, 3, 5]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request

from ctloop.server._deps import audit_write, needs, render, workspace_of
from ctloop.server._paging import MAX_LIMIT, page_of_runs
from ctloop.store.keys import Role
from ctloop.store.records import MetricRecord, TagRecord
from ctloop.store.statuses import RunStatus

__all__ = ["downsample", "runs_router"]

T = TypeVar("T")


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
        if held is None or _order(metric) >= _order(held):
            latest[metric.key] = metric
    return {key: render(m) for key, m in sorted(latest.items())}


def _order(metric: MetricRecord) -> tuple[bool, int, float]:
    return (metric.execution_id is None, metric.step or 0, metric.timestamp.timestamp())


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

    @router.get("/runs/{run_id}", dependencies=[viewer], summary="One run, all it recorded")
    def get_run(request: Request, run_id: str) -> dict[str, Any]:
        store = workspace_of(request).metadata
        run = store.get_run(run_id)
        return {
            **render(run),
            "params": {p.key: p.value for p in store.get_params(run.id) if p.execution_id is None},
            "metrics": latest_metrics(store.get_metrics(run.id)),
            "tags": _run_tags(store.get_tags(run.id)),
            "executions": render(store.list_executions(run.id)),
        }

    @router.get("/runs/{run_id}/metrics/{key}", dependencies=[viewer], summary="A metric's history")
    def metric_history(
        request: Request, run_id: str, key: str, max_points: int = Query(1000, ge=1, le=10_000)
    ) -> dict[str, Any]:
        store = workspace_of(request).metadata
        run = store.get_run(run_id)
        points = store.get_metrics(run.id, key)
        return {
            "run_id": run.id,
            "key": key,
            "count": len(points),
            "points": [_point(p) for p in downsample(points, max_points)],
        }

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

    @router.get(
        "/executions/{execution_id}", dependencies=[viewer], summary="An execution and its events"
    )
    def get_execution(request: Request, execution_id: str) -> dict[str, Any]:
        store = workspace_of(request).metadata
        execution = store.get_execution(execution_id)
        events = store.events_of_execution(execution.id)
        return {**render(execution), "events": render(events)}

    return router


def _run_tags(tags: Sequence[TagRecord]) -> dict[str, str]:
    return {t.key: t.value for t in tags if t.execution_id is None}


def _point(metric: MetricRecord) -> dict[str, Any]:
    return {
        "step": metric.step,
        "value": render(metric.value),
        "timestamp": metric.timestamp.isoformat(),
    }
