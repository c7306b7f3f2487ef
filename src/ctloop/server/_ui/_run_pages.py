"""The pages of runs: the runs table, one run (its step graph, params, metrics, charts,
step details with log tails) and a comparison; each reads what the API v1 route of the
same data answers, through the same functions."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from ctloop.server._deps import workspace_of
from ctloop.server._errors import BadRequestError
from ctloop.server._run_search import search_runs
from ctloop.server._runs import (
    compare,
    execution_detail,
    execution_log,
    metric_history,
    run_detail,
)
from ctloop.server._ui._dag import layout
from ctloop.server._ui._render import guarded, number, page, seconds
from ctloop.server._ui._session import page_caller
from ctloop.store.statuses import RunStatus

if TYPE_CHECKING:
    from fastapi.responses import Response

    from ctloop.store.workspace import Workspace

__all__ = ["run_pages"]

#: runs on one page of the table
PAGE_SIZE = 50
#: lines of each step's log shown on the run's page
LOG_TAIL = 40
_FILTERS = ("pipeline", "status", "trigger", "where", "columns", "sort")


def run_pages() -> APIRouter:
    """The routes of the runs pages."""
    router = APIRouter(include_in_schema=False)

    @router.get("/runs")
    @guarded
    def runs(request: Request) -> Response:
        page_caller(request)
        form = {name: request.query_params.get(name, "").strip() for name in _FILTERS}
        number_of_page = _page_number(request.query_params.get("page"))
        result, error = _search(workspace_of(request), form, number_of_page)
        pages = max(1, math.ceil(result["total"] / PAGE_SIZE))
        return page(
            request,
            "runs.html",
            title="Runs · ctloop",
            section="Runs",
            form=form,
            sort=form["sort"] or "-started_at",
            statuses=[str(s) for s in RunStatus],
            result=result,
            error=error,
            page=number_of_page,
            pages=pages,
            link=lambda **change: _link(form, number_of_page, change),
        )

    @router.get("/runs/{run_id}")
    @guarded
    def run(request: Request, run_id: str) -> Response:
        page_caller(request)
        workspace = workspace_of(request)
        detail = run_detail(workspace.metadata, run_id)
        steps = [_step(workspace, e) for e in detail["executions"]]
        return page(
            request,
            "run.html",
            title=f"Run {detail['id'][:8]} · ctloop",
            section="Runs",
            run=detail,
            facts=_run_facts(detail),
            dag=layout([(s["name"], s["status"]) for s in steps], _edges(steps)),
            params=sorted(detail["params"].items()),
            metrics=_metric_rows(detail, steps),
            charts=_charts(workspace, detail),
            tags=sorted(detail["tags"].items()),
            steps=steps,
        )

    @router.get("/compare")
    @guarded
    def compare_page(request: Request) -> Response:
        page_caller(request)
        refs = request.query_params.getlist("runs")
        found = compare(workspace_of(request).metadata, refs)
        return page(
            request,
            "compare.html",
            title="Compare runs · ctloop",
            section="Runs",
            runs=found.runs,
            params=[_row(p.key, p.values, p.differs, str) for p in found.params],
            metrics=[_row(m.key, m.values, m.differs, number) for m in found.metrics],
        )

    return router


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or 1))
    except ValueError:
        raise BadRequestError(f"page {raw!r} is not a whole number", field="page") from None


def _search(workspace: Workspace, form: dict[str, str], number_of_page: int) -> tuple[Any, str]:
    """The page of runs; a condition or sort the server cannot read is said above an
    unfiltered table rather than an error page, so the user can fix it in place."""
    arguments: dict[str, Any] = {
        "pipeline": form["pipeline"] or None,
        "status": form["status"] or None,
        "trigger": form["trigger"] or None,
        "offset": (number_of_page - 1) * PAGE_SIZE,
        "limit": PAGE_SIZE,
        "metrics": [k.strip() for k in form["columns"].split(",") if k.strip()],
    }
    if form["status"] and form["status"] not in {str(s) for s in RunStatus}:
        raise BadRequestError(f"status {form['status']!r} is not a run status", field="status")
    try:
        return search_runs(
            workspace.metadata, where=form["where"], sort=form["sort"], **arguments
        ), ""
    except BadRequestError as exc:
        return search_runs(workspace.metadata, **arguments), str(exc)


def _link(form: dict[str, str], number_of_page: int, change: dict[str, Any]) -> str:
    query = {k: v for k, v in {**form, "page": number_of_page, **change}.items() if v}
    return "/runs?" + urlencode(query)


def _run_facts(run: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("id", run["id"]),
        ("pipeline", f"{run['pipeline']} (version {run['pipeline_version'][:12]})"),
        ("started", f"{run['started_at'][:19].replace('T', ' ')} by {run['user']}@{run['host']}"),
        ("ended", (run["ended_at"] or "running")[:19].replace("T", " ")),
        ("trigger", run["trigger"]),
        ("code", run["git_commit"] or run["reference"]),
        ("executor", run["executor"]),
    ]


def _step(workspace: Workspace, execution: dict[str, Any]) -> dict[str, Any]:
    """One step as its card and its node show it."""
    detail = execution_detail(workspace.metadata, execution["id"])
    log = execution_log(workspace, execution["id"], LOG_TAIL)["lines"]
    status = execution["status"]
    cached = execution.get("cached_from")
    facts = [
        ("execution", execution["id"]),
        ("duration", _duration(execution)),
        ("attempt", execution["attempt"]),
        ("code", execution["code_hash"][:12]),
    ]
    if cached:
        facts.append(("cached from", cached))
    return {
        "name": execution["step"],
        "status": status,
        "facts": facts,
        "params": sorted((k, json.dumps(v)) for k, v in execution["parameters"].items()),
        "events": [
            ("in" if e["kind"] == "input" else "out", e["name"], e["artifact_id"])
            for e in detail["events"]
        ],
        "error": execution["error"],
        "log": log,
    }


def _duration(execution: dict[str, Any]) -> str:
    from datetime import datetime

    if not execution["started_at"] or not execution["ended_at"]:
        return ""
    start = datetime.fromisoformat(execution["started_at"])
    return seconds((datetime.fromisoformat(execution["ended_at"]) - start).total_seconds())


def _edges(steps: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Step A feeds step B when B read an artifact that A wrote."""
    writer = {art: s["name"] for s in steps for kind, _, art in s["events"] if kind == "out"}
    return [
        (writer[art], s["name"])
        for s in steps
        for kind, _, art in s["events"]
        if kind == "in" and art in writer
    ]


def _metric_rows(run: dict[str, Any], steps: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    by_execution = {s["facts"][0][1]: s["name"] for s in steps}
    return [
        (key, number(m["value"]), m["step"], by_execution.get(m["execution_id"], "run"))
        for key, m in run["metrics"].items()
    ]


def _charts(workspace: Workspace, run: dict[str, Any]) -> list[dict[str, Any]]:
    """A line chart of every metric logged more than once (training curves)."""
    charts = []
    for key in run["metrics"]:
        history = metric_history(workspace.metadata, run["id"], key)
        if history["count"] > 1:
            points = [
                [p["step"] if p["step"] is not None else i, p["value"]]
                for i, p in enumerate(history["points"])
            ]
            charts.append({"title": key, "count": history["count"], "points": json.dumps(points)})
    return charts


def _row(name: str, values: Any, differs: bool, show: Any) -> dict[str, Any]:
    return {
        "key": name,
        "shown": ["" if v is None else show(v) for v in values],
        "differs": differs,
    }
