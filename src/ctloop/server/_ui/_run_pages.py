"""The pages of runs: the runs table, one run (its step graph, params, metrics, charts,
step details with log tails) and a comparison; each reads what the API v1 route of the
same data answers, through the same functions."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request

from ctloop.server._deps import audit_write, workspace_of
from ctloop.server._errors import BadRequestError
from ctloop.server._run_search import parse_conditions, search_runs
from ctloop.server._runs import compare, downsample, run_detail, start_resume
from ctloop.server._ui._dag import layout
from ctloop.server._ui._render import guarded, number, page, param, script_json, seconds
from ctloop.server._ui._session import check_write, page_caller
from ctloop.store._keys import Role
from ctloop.store.statuses import RunStatus

if TYPE_CHECKING:
    from fastapi.responses import Response

    from ctloop.store.metadata import MetadataStore
    from ctloop.store.workspace import Workspace

__all__ = ["run_pages"]

#: runs on one page of the table
PAGE_SIZE = 50
#: the most points a metric's chart draws (the API's history downsamples the same way)
CHART_POINTS = 1000
#: a colour per compared run (the same one in every chart of the page); 20 runs at most
RUN_COLOURS = (
    "#1f6fd1", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#0c8599", "#b08900", "#495057",
    "#f783ac", "#66a80f", "#862e9c", "#d9480f", "#1864ab", "#5c940d", "#a61e4d", "#087f5b",
    "#e67700", "#364fc7", "#9c36b5", "#2b8a3e",
)  # fmt: skip
_FILTERS = ("pipeline", "status", "trigger", "user", "where", "columns", "params", "sort")


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
        newest_first = (form["sort"] or "-started_at") == "-started_at"
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
            watch_new=_watch_new(form, result) if newest_first and number_of_page == 1 else None,
        )

    @router.get("/runs/{run_id}")
    @guarded
    def run(request: Request, run_id: str) -> Response:
        caller = page_caller(request)
        workspace = workspace_of(request)
        detail = run_detail(workspace.metadata, run_id)
        edges = _edges(workspace.metadata, detail["executions"])
        steps = [_step(e, detail["metrics"]) for e in _latest_attempts(detail["executions"])]
        return page(
            request,
            "run.html",
            title=f"Run {detail['id'][:8]} · ctloop",
            section="Runs",
            run=detail,
            facts=_run_facts(detail),
            dag=layout([(s["name"], s["status"]) for s in steps], edges),
            params=_parameters(detail),
            metrics=_metric_rows(detail, steps),
            charts=_charts(workspace, detail),
            tags=sorted(detail["tags"].items()),
            steps=steps,
            steps_json=script_json({s["name"]: s for s in steps}),
            can_resume=caller.role.allows(Role.EDITOR) and detail["status"] == RunStatus.FAILED,
            notice=request.query_params.get("notice", ""),
        )

    @router.post("/runs/{run_id}/resume")
    @guarded
    def resume(request: Request, run_id: str, csrf: str = Form("")) -> Response:
        from fastapi.responses import RedirectResponse

        caller = page_caller(request, Role.EDITOR)
        check_write(request, csrf)
        run = start_resume(workspace_of(request), run_id)
        audit_write(request, caller, "run.resume", f"run {run.id}")
        notice = quote("resuming: the steps that did not succeed run again")
        return RedirectResponse(f"/runs/{run.id}?notice={notice}", status_code=303)

    @router.get("/compare")
    @guarded
    def compare_page(request: Request) -> Response:
        page_caller(request)
        refs = request.query_params.getlist("runs")
        store = workspace_of(request).metadata
        found = compare(store, refs)
        curves, single = _shared_curves(store, [run.id for run in found.runs])
        colours = {run.id: RUN_COLOURS[i % len(RUN_COLOURS)] for i, run in enumerate(found.runs)}
        return page(
            request,
            "compare.html",
            title="Compare runs · ctloop",
            section="Runs",
            runs=found.runs,
            params=[_row(p.key, p.values, p.differs, str) for p in found.params],
            metrics=[_row(m.key, m.values, m.differs, number) for m in found.metrics],
            colours=colours,
            labels={run.id: f"{run.id[:8]} {run.pipeline}" for run in found.runs},
            curves=curves,
            single=single,
            curves_json=script_json(
                {
                    "points": CHART_POINTS,
                    "runs": {run.id: {"colour": colours[run.id]} for run in found.runs},
                }
            ),
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
        "user": form["user"] or None,
        "offset": (number_of_page - 1) * PAGE_SIZE,
        "limit": PAGE_SIZE,
        "metrics": [k.strip() for k in form["columns"].split(",") if k.strip()],
        "params": [k.strip() for k in form["params"].split(",") if k.strip()],
    }
    if form["status"] and form["status"] not in {str(s) for s in RunStatus}:
        raise BadRequestError(f"status {form['status']!r} is not a run status", field="status")
    try:
        return search_runs(
            workspace.metadata,
            where=form["where"],
            sort=form["sort"],
            exact_total=False,
            **arguments,
        ), ""
    except BadRequestError as exc:
        return search_runs(workspace.metadata, exact_total=False, **arguments), str(exc)


def _watch_new(form: dict[str, str], result: dict[str, Any]) -> dict[str, Any] | None:
    """What the first page of the newest runs polls to show runs started after it was
    drawn: ``GET /api/v1/runs/search`` with the page's filters, conditions and columns
    and ``started_after`` the newest start it shows (none for an empty page). A page
    whose conditions the server could not read (drawn unfiltered) polls nothing."""
    if form["where"]:
        try:
            parse_conditions(form["where"])
        except BadRequestError:
            return None
    query = {
        name: form[name]
        for name in ("pipeline", "status", "trigger", "user", "where")
        if form[name]
    }
    if result["metrics"]:
        query["metrics"] = ",".join(result["metrics"])
    if result["params"]:
        query["params"] = ",".join(result["params"])
    items = result["items"]
    return {
        "query": urlencode(query),
        "since": max((run["started_at"] for run in items), default=""),
        "limit": PAGE_SIZE,
    }


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


def _latest_attempts(executions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step once, by its latest attempt (a resumed step has several), in run order."""
    latest: dict[str, dict[str, Any]] = {}
    for execution in executions:
        held = latest.get(execution["step"])
        if held is None or execution["attempt"] >= held["attempt"]:
            latest[execution["step"]] = execution
    return list(latest.values())


def _step(execution: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """One step as its node and its panel show it; the panel fetches its inputs, outputs
    and log tail from the API when the step is clicked."""
    facts = [
        ("execution", execution["id"]),
        ("duration", _duration(execution)),
        ("attempt", execution["attempt"]),
        ("code", execution["code_hash"][:12]),
    ]
    if execution.get("cached_from"):
        facts.append(("cached from", execution["cached_from"]))
    return {
        "name": execution["step"],
        "id": execution["id"],
        "status": execution["status"],
        "facts": facts,
        "params": sorted([k, json.dumps(v)] for k, v in execution["parameters"].items()),
        "metrics": [
            [key, number(m["value"])]
            for key, m in metrics.items()
            if m["execution_id"] == execution["id"]
        ],
        "error": execution["error"],
    }


def _duration(execution: dict[str, Any]) -> str:
    from datetime import datetime

    if not execution["started_at"] or not execution["ended_at"]:
        return ""
    start = datetime.fromisoformat(execution["started_at"])
    return seconds((datetime.fromisoformat(execution["ended_at"]) - start).total_seconds())


def _edges(store: MetadataStore, executions: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Step A feeds step B when B read an artifact that A wrote."""
    step_of = {e["id"]: e["step"] for e in executions}
    events = [event for e in executions for event in store.events_of_execution(e["id"])]
    writer = {e.artifact_id: step_of[e.execution_id] for e in events if e.kind == "output"}
    found = {
        (writer[e.artifact_id], step_of[e.execution_id])
        for e in events
        if e.kind == "input" and e.artifact_id in writer
    }
    return sorted(found)


def _parameters(run: dict[str, Any]) -> list[tuple[str, str]]:
    """The pipeline's parameters of the run and the parameters it logged (those win)."""
    given = {key: param(value) for key, value in run["parameters"].items()}
    return sorted({**given, **run["params"]}.items())


def _metric_rows(run: dict[str, Any], steps: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    by_execution = {s["id"]: s["name"] for s in steps}
    return [
        (key, number(m["value"]), m["step"], by_execution.get(m["execution_id"], "run"))
        for key, m in run["metrics"].items()
    ]


def _charts(workspace: Workspace, run: dict[str, Any]) -> list[dict[str, Any]]:
    """A line chart of every metric logged more than once (training curves), from one
    read of the run's metrics, each downsampled as the API's history is."""
    by_key: dict[str, list[Any]] = {}
    for point in workspace.metadata.get_metrics(run["id"]):
        by_key.setdefault(point.key, []).append(point)
    charts = []
    for key, history in sorted(by_key.items()):
        if len(history) > 1:
            shown = downsample(history, CHART_POINTS)
            points = [
                [p.step if p.step is not None else i, p.value]
                for i, p in enumerate(shown)
                if math.isfinite(p.value)
            ]
            charts.append({"title": key, "count": len(history), "points": json.dumps(points)})
    return charts


def _shared_curves(
    store: MetadataStore, run_ids: list[str]
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """The curves to overlay: each metric key logged more than once (a training curve, as
    the run page charts it) by two or more of the runs, with the runs that have it (in
    the comparison's order) and those that do not; and the curves only one run has, as
    (key, run id). The points themselves the page reads from the API's metric history."""
    has: dict[str, list[str]] = {}
    for run_id in run_ids:
        counts: dict[str, int] = {}
        for point in store.get_metrics(run_id):
            counts[point.key] = counts.get(point.key, 0) + 1
        for key, count in counts.items():
            if count > 1:
                has.setdefault(key, []).append(run_id)
    shared = [
        {"key": key, "runs": ids, "missing": [r for r in run_ids if r not in ids]}
        for key, ids in sorted(has.items())
        if len(ids) > 1
    ]
    single = [(key, ids[0]) for key, ids in sorted(has.items()) if len(ids) == 1]
    return shared, single


def _row(name: str, values: Any, differs: bool, show: Any) -> dict[str, Any]:
    return {
        "key": name,
        "shown": ["" if v is None else show(v) for v in values],
        "differs": differs,
    }
