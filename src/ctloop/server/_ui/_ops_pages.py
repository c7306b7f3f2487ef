"""The operations pages: deployments, a model's monitoring, triggers, alerts, data sets
and (admin) API keys. Each reads what the REST API v1 reads, through the same functions
(:mod:`ctloop.server._ops_api`, the stores of the workspace); creating and revoking a key
is the API's own operation, audited the same way.

>>> router = ops_pages()
>>> sorted(r.path for r in router.routes if "GET" in r.methods)[:3]
['/alerts', '/data', '/deployments']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request

from ctloop.errors import CtloopError
from ctloop.server._deps import audit_write, workspace_of
from ctloop.server._errors import BadRequestError
from ctloop.server._ops_api import data_sets, load_html, monitoring_history, report_html_id
from ctloop.server._ui._ops_charts import Axis, bar_chart, heatmap, line_chart
from ctloop.server._ui._render import guarded, page
from ctloop.server._ui._session import check_write, page_caller
from ctloop.store._keys import Role

if TYPE_CHECKING:
    from fastapi.responses import Response

    from ctloop.store._operations_records import AlertRecord, DeploymentRecord
    from ctloop.store.workspace import Workspace

__all__ = ["ops_pages"]

#: the actions of a deployment's history that are a verdict on its canary
VERDICTS = ("promote", "rollback", "auto-rollback")
#: a stored report is shown as it was written, but may run nothing and load nothing
_REPORT_HEADERS = {
    "Cache-Control": "private, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; "
        "frame-ancestors 'self'"
    ),
}
_KEY_LIFETIMES = {"": None, "30": 30, "90": 90, "365": 365}


def ops_pages() -> APIRouter:
    """The routes of the operations pages."""
    router = APIRouter(include_in_schema=False)
    _deployment_routes(router)
    _monitoring_routes(router)
    _trigger_and_data_routes(router)
    _key_routes(router)
    return router


def _deployment_routes(router: APIRouter) -> None:
    @router.get("/deployments")
    @guarded
    def deployments(request: Request) -> Response:
        page_caller(request)
        workspace = workspace_of(request)
        current = sorted(workspace.deployments.list(), key=lambda d: d.name)
        shown = [_deployment_row(workspace, record) for record in current]
        histories = {r.name: list(reversed(workspace.deployments.history(r.name))) for r in current}
        verdicts = [
            record for name in histories for record in histories[name] if record.action in VERDICTS
        ]
        verdicts.sort(key=lambda r: r.created_at, reverse=True)
        return page(
            request,
            "ops_deployments.html",
            title="Deployments · ctloop",
            section="Deployments",
            deployments=shown,
            verdicts=verdicts,
            histories=histories,
            canary_alerts=[a for a in workspace.alerts.list() if a.source == "canary"],
        )


def _deployment_row(workspace: Workspace, record: DeploymentRecord) -> dict[str, Any]:
    """What a deployment serves now: the primary (its alias resolved), canary, shadow."""
    state = record.state or {}
    canary, shadow = state.get("canary"), state.get("shadow")
    primary = str(state.get("primary", "champion"))
    return {
        "name": record.name,
        "model": record.model,
        "primary": primary,
        "primary_version": _resolved(workspace, record.model, primary),
        "canary": canary,
        "primary_share": 100.0 - float(canary["traffic"]) if canary else 100.0,
        "shadow": shadow,
        "rollback": state.get("rollback") or {},
        "changed": record,
    }


def _resolved(workspace: Workspace, model: str, primary: str) -> str:
    from ctloop.store._deployments import resolve_version

    try:
        return f"v{resolve_version(workspace, model, primary)}"
    except CtloopError as exc:
        return f"unresolved: {exc}"


def _monitoring_routes(router: APIRouter) -> None:
    @router.get("/monitoring")
    @guarded
    def monitoring_index(request: Request) -> Response:
        page_caller(request)
        models = sorted(m.name for m in workspace_of(request).registry.list_models())
        return page(
            request,
            "ops_monitoring_index.html",
            title="Monitoring · ctloop",
            section="Monitoring",
            models=models,
        )

    @router.get("/monitoring/{model}")
    @guarded
    def monitoring(request: Request, model: str) -> Response:
        page_caller(request)
        against = request.query_params.get("against", "training")
        if against not in ("training", "previous"):
            raise BadRequestError(
                f"against={against!r} is not known: training or previous", field="against"
            )
        limit = _int_query(request, "windows", 200, 1, 1000)
        history = monitoring_history(workspace_of(request), model, limit=limit)
        return page(
            request,
            "ops_monitoring.html",
            title=f"Monitoring {model} · ctloop",
            section="Monitoring",
            model=model,
            against=against,
            history=history,
            charts=_charts(model, history, against),
            limit=limit,
        )

    @router.get("/monitoring/{model}/windows/{report_id}")
    @guarded
    def window_report(request: Request, model: str, report_id: str) -> Response:
        from fastapi.responses import HTMLResponse

        page_caller(request)
        workspace = workspace_of(request)
        html = load_html(workspace, report_html_id(workspace, report_id))
        return HTMLResponse(html, headers=_REPORT_HEADERS)


def _charts(model: str, history: Mapping[str, Any], against: str) -> dict[str, Any]:
    """The heatmap and the charts of the monitoring page, on one time axis."""
    windows: list[dict[str, Any]] = history["windows"]
    if not windows:
        return {}
    axis = Axis([w["end"] for w in windows])
    part = "skew" if against == "training" else "drift"
    by_report = {w["report_id"]: i for i, w in enumerate(windows)}
    marks: dict[int, list[str]] = {}
    for alert in history["alerts"]:
        index = by_report.get(alert.report_artifact_id or "")
        if index is None:
            index = _nearest(windows, alert.created_at)
        if index is not None:
            marks.setdefault(index, []).append(
                f"alert {alert.id} ({alert.severity}): {alert.cause}"
            )

    def link(i: int) -> str:
        return f"/monitoring/{quote(model)}/windows/{windows[i]['report_id']}"

    perf = [w["performance"] or {} for w in windows]
    traffic = [w.get("traffic") or {"predictions": w["rows"], "latency_ms": None} for w in windows]
    attribution = [w["attribution"] or {} for w in windows]
    metric = next((p["metric"] for p in perf if p.get("metric")), "metric")
    return {
        "axis": axis,
        "marks": marks,
        "metric": metric,
        "heatmap": heatmap(
            axis, history["features"], [w[part] for w in windows], windows, link, marks
        ),
        "performance": line_chart(
            axis,
            metric,
            [p.get("value") for p in perf],
            reference=[p.get("baseline") for p in perf],
            bad=[bool(p.get("degraded")) for p in perf],
            alerts=marks,
        ),
        "labelled": sum(1 for p in perf if p.get("value") is not None),
        "volume": bar_chart(axis, "predictions", [t["predictions"] for t in traffic], alerts=marks),
        "latency": line_chart(
            axis,
            "p99 latency (ms)",
            [(t["latency_ms"] or {}).get("p99") for t in traffic],
            reference=[(t["latency_ms"] or {}).get("p50") for t in traffic],
            reference_label="p50",
            alerts=marks,
        ),
        "timed": sum(1 for t in traffic if t["latency_ms"]),
        "attribution": line_chart(
            axis,
            "attribution shift",
            [a.get("distance") for a in attribution],
            reference=[a.get("threshold") for a in attribution],
            bad=[bool(a.get("drifted")) for a in attribution],
            reference_label="threshold",
        ),
    }


def _nearest(windows: Sequence[Mapping[str, Any]], moment: datetime) -> int | None:
    """The window whose span holds ``moment`` (an alert that names no report)."""
    for i, window in enumerate(windows):
        start, end = window.get("start"), window.get("end")
        if start and end and datetime.fromisoformat(start) <= moment < datetime.fromisoformat(end):
            return i
    return None


def _trigger_and_data_routes(router: APIRouter) -> None:
    @router.get("/triggers")
    @guarded
    def triggers(request: Request) -> Response:
        page_caller(request)
        from ctloop.server._declared_triggers import declared_triggers, later, project_triggers

        workspace = workspace_of(request)
        chosen = request.query_params.get("trigger") or None
        firings = workspace.triggers.list_firings(trigger=chosen)
        specs, error = project_triggers(getattr(request.app.state, "project_root", None))
        now = datetime.now(UTC)
        return page(
            request,
            "ops_triggers.html",
            title="Triggers · ctloop",
            section="Triggers",
            triggers=declared_triggers(workspace, specs, now),
            error=error,
            due=lambda moment: later(moment, now),
            firings=firings[:500],
            more=max(0, len(firings) - 500),
            chosen=chosen,
        )

    @router.get("/alerts")
    @guarded
    def alerts(request: Request) -> Response:
        page_caller(request)
        subject = request.query_params.get("subject") or None
        found = list(reversed(workspace_of(request).alerts.list(subject)))
        return page(
            request,
            "ops_alerts.html",
            title="Alerts · ctloop",
            section="Alerts",
            alerts=found,
            subject=subject,
            sinks=_sinks(found),
        )

    @router.get("/data")
    @guarded
    def data(request: Request) -> Response:
        page_caller(request)
        return page(
            request,
            "ops_data.html",
            title="Data · ctloop",
            section="Data",
            data_sets=data_sets(workspace_of(request)),
        )


def _sinks(alerts: Sequence[AlertRecord]) -> list[str]:
    return sorted({sink for alert in alerts for sink in alert.delivery})


def _key_routes(router: APIRouter) -> None:
    @router.get("/keys")
    @guarded
    def keys(request: Request) -> Response:
        page_caller(request, Role.ADMIN)
        return _keys_page(request, notice=request.query_params.get("notice", ""))

    @router.post("/keys")
    @guarded
    def create_key(
        request: Request,
        name: str = Form("", max_length=200),
        role: str = Form("viewer"),
        expires: str = Form(""),
        csrf: str = Form(""),
    ) -> Response:
        caller = page_caller(request, Role.ADMIN)
        check_write(request, csrf)
        if not name.strip():
            raise BadRequestError("give the key a name (who or what will use it)", "name")
        try:
            chosen = Role(role)
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise BadRequestError(f"role {role!r} is not one of {known}", "role") from None
        if expires not in _KEY_LIFETIMES:
            raise BadRequestError(f"expires {expires!r} is not one of the choices", "expires")
        days = _KEY_LIFETIMES[expires]
        expires_at = None if days is None else datetime.now(UTC) + timedelta(days=days)
        created = workspace_of(request).keys.create(
            name.strip(), chosen, created_by=caller.name, expires_at=expires_at
        )
        detail = {"id": created.record.id, "name": name.strip(), "role": str(chosen)}
        audit_write(request, caller, "key.create", f"key {created.record.id}", detail)
        return _keys_page(request, created=created)

    @router.post("/keys/{key_id}/revoke")
    @guarded
    def revoke_key(request: Request, key_id: str, csrf: str = Form("")) -> Response:
        from fastapi.responses import RedirectResponse

        caller = page_caller(request, Role.ADMIN)
        check_write(request, csrf)
        record = workspace_of(request).keys.revoke(key_id)
        request.app.state.auth.forget(record.id)
        audit_write(request, caller, "key.revoke", f"key {record.id}", {"name": record.name})
        notice = f"key {record.name!r} ({record.prefix}…) is revoked"
        return RedirectResponse(f"/keys?notice={quote(notice)}", status_code=303)


def _keys_page(request: Request, *, created: Any = None, notice: str = "") -> Response:
    found = workspace_of(request).keys.list()
    now = datetime.now(UTC)
    return page(
        request,
        "ops_keys.html",
        title="API keys · ctloop",
        section="Keys",
        keys=[(k, k.refusal(now)) for k in reversed(found)],
        roles=[r.value for r in Role],
        created=created,
        notice=notice,
    )


def _int_query(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequestError(f"{name}={raw!r} is not a whole number", field=name) from None
    if not low <= value <= high:
        raise BadRequestError(f"{name}={value} is not between {low} and {high}", field=name)
    return value
