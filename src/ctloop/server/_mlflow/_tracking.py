"""MLflow's tracking API: experiments, runs, params, metrics and tags.

``runs/log-batch`` writes its metrics, params and tags in one transaction of the
metadata store and checks MLflow's limits first (1,000 metrics, 100 params, 100 tags,
1,000 items in all). A param, once logged, keeps its value, as in MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from fastapi import APIRouter, Request

from ctloop.errors import IntegrityError, NotFoundError
from ctloop.server._auth import Caller
from ctloop.server._deps import (
    audit_draft,
    audit_write,
    log_metrics_now,
    log_tracking_audited,
)
from ctloop.server._mlflow._bridge import DELETED, HIDDEN, MODEL_STEP, Bridge, bridge_of
from ctloop.server._mlflow._fields import check_key, in_view, page_of, tag_map
from ctloop.server._mlflow._protocol import (
    MlflowError,
    from_ms,
    integer,
    json_number,
    mlflow_router,
    number,
    text,
    to_ms,
)
from ctloop.server._mlflow._search import matches, parse_filter, parse_order
from ctloop.store.records import MetricRecord, ParamRecord, RunRecord, TagRecord, utcnow
from ctloop.store.statuses import RunStatus

__all__ = [
    "log_batch_items",
    "log_batch_now",
    "log_metric_now",
    "log_one_item",
    "metric_json",
    "render_run",
    "tracking_router",
]

MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ITEMS = 1000, 100, 100, 1000
MAX_PARAM_VALUE = 6000
#: the most metric points of one batch written on the event loop (a larger batch is
#: written in a thread: the loop answers other requests meanwhile)
MAX_METRICS_NOW = 100
_TO_CTLOOP = {
    "RUNNING": RunStatus.RUNNING,
    "SCHEDULED": RunStatus.RUNNING,
    "FINISHED": RunStatus.SUCCEEDED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.FAILED,
}
_KILLED = "killed from the MLflow client"


def mlflow_status(run: RunRecord) -> str:
    """A ctloop run's status as MLflow names it."""
    if run.status == RunStatus.SUCCEEDED:
        return "FINISHED"
    if run.status == RunStatus.FAILED:
        return "KILLED" if run.error == _KILLED else "FAILED"
    return "RUNNING"


def render_run(bridge: Bridge, run: RunRecord) -> dict[str, Any]:
    """MLflow's JSON of a run: info, data (params, latest metrics, tags), inputs, outputs."""
    store = bridge.workspace.metadata
    experiment = bridge.experiment_of(run)
    tags = {t.key: t.value for t in store.get_tags(run.id) if t.execution_id is None}
    latest: dict[str, MetricRecord] = {}
    for metric in store.get_metrics(run.id):
        if metric.execution_id is not None:
            continue
        held = latest.get(metric.key)
        if held is None or (metric.step or 0, metric.timestamp) >= (held.step or 0, held.timestamp):
            latest[metric.key] = metric
    params = [p for p in store.get_params(run.id) if p.execution_id is None]
    models = [e for e in store.list_executions(run.id) if e.step == MODEL_STEP]
    return {
        "info": {
            "run_id": run.id,
            "run_uuid": run.id,
            "run_name": tags.get("mlflow.runName", ""),
            "experiment_id": experiment.id,
            "user_id": run.user,
            "status": mlflow_status(run),
            "start_time": to_ms(run.started_at),
            "end_time": to_ms(run.ended_at),
            "artifact_uri": f"mlflow-artifacts:/{experiment.id}/{run.id}/artifacts",
            "lifecycle_stage": "deleted" if tags.get(DELETED) == "true" else "active",
        },
        "data": {
            "metrics": [metric_json(m) for _, m in sorted(latest.items())],
            "params": [{"key": p.key, "value": p.value} for p in params],
            "tags": [
                {"key": k, "value": v} for k, v in sorted(tags.items()) if not k.startswith(HIDDEN)
            ],
        },
        "inputs": {},
        "outputs": {"model_outputs": [{"model_id": m.id, "step": 0} for m in models]},
    }


def metric_json(metric: MetricRecord) -> dict[str, Any]:
    return {
        "key": metric.key,
        "value": json_number(metric.value),
        "timestamp": to_ms(metric.timestamp),
        "step": metric.step or 0,
    }


def tracking_router() -> APIRouter:
    """The routes of runs and metrics (mounted under ``/api/2.0/mlflow``)."""
    router, viewer, editor, body = mlflow_router()

    # -- runs -------------------------------------------------------------------------
    @router.post("/runs/create")
    def create_run(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        experiment = bridge.experiment(text(data, "experiment_id", required=False, default="0"))
        if experiment.deleted:
            raise MlflowError.invalid(f"experiment {experiment.name!r} is deleted")
        tags = tag_map(data.get("tags"))
        if data.get("run_name"):
            tags["mlflow.runName"] = str(data["run_name"])
        user = text(data, "user_id", required=False) or tags.get("mlflow.user") or caller.name
        run = bridge.create_run(
            experiment, user=user, start_ms=integer(data, "start_time"), tags=tags
        )
        audit_write(request, caller, "mlflow.run.create", f"run {run.id}")
        return {"run": render_run(bridge, run)}

    @router.get("/runs/get", dependencies=[viewer])
    def get_run(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        bridge = bridge_of(request)
        run_id = text(data, "run_id", required=False) or text(data, "run_uuid")
        return {"run": render_run(bridge, bridge.run(run_id))}

    @router.post("/runs/update")
    def update_run(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        run = bridge.run(text(data, "run_id", required=False) or text(data, "run_uuid"))
        changes: dict[str, Any] = {}
        status = data.get("status")
        if status:
            if status not in _TO_CTLOOP:
                raise MlflowError.invalid(
                    f"status {status!r} is not one of {', '.join(sorted(_TO_CTLOOP))}"
                )
            changes["status"] = _TO_CTLOOP[status]
            if status == "KILLED":
                changes["error"] = _KILLED
        end = integer(data, "end_time")
        if end is not None:
            changes["ended_at"] = from_ms(end)
        elif changes.get("status") in RunStatus.finished():
            changes["ended_at"] = utcnow()
        store = bridge.workspace.metadata
        if changes:
            store.update_run(run.id, **changes)
        if data.get("run_name"):
            store.log_batch(tags=[TagRecord(run.id, "mlflow.runName", str(data["run_name"]))])
        audit_write(request, caller, "mlflow.run.update", f"run {run.id}", {"status": status})
        return {"run_info": render_run(bridge, store.get_run(run.id))["info"]}

    @router.post("/runs/delete")
    @router.post("/runs/restore")
    def delete_run(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        run = bridge.run(text(data, "run_id"))
        deleting = request.url.path.endswith("/delete")
        tag = TagRecord(run.id, DELETED, "true" if deleting else "false")
        bridge.workspace.metadata.log_batch(tags=[tag])
        action = "delete" if deleting else "restore"
        audit_write(request, caller, f"mlflow.run.{action}", f"run {run.id}")
        return {}

    @router.post("/runs/search", dependencies=[viewer])
    def search_runs(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        bridge = bridge_of(request)
        ids = data.get("experiment_ids") or []
        experiments = [bridge.experiment(str(i)) for i in ([ids] if isinstance(ids, str) else ids)]
        clauses = parse_filter(data.get("filter"))
        view = str(data.get("run_view_type") or "ACTIVE_ONLY")
        rendered = []
        for run in bridge.runs_of(experiments):
            shown = render_run(bridge, run)
            deleted = shown["info"]["lifecycle_stage"] == "deleted"
            if in_view(deleted, view) and matches(clauses, _run_value(shown)):
                rendered.append(shown)
        for kind, key, ascending in reversed(parse_order(data.get("order_by"))):
            rendered = _ordered(rendered, kind, key, ascending)
        page, token = page_of(rendered, data, default=1000)
        return {"runs": page, **token}

    @router.post("/runs/log-parameter")
    @router.post("/runs/log-metric")
    @router.post("/runs/set-tag")
    def log_one(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        return log_one_item(request, data, caller)

    @router.post("/runs/delete-tag")
    def delete_tag(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        raise MlflowError(
            "BAD_REQUEST",
            "deleting a run's tag is not supported by this server; set it to another value",
        )

    @router.post("/runs/log-batch")
    def log_batch(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        return log_batch_items(request, data, caller)

    @router.post("/runs/log-inputs")
    @router.post("/runs/outputs")
    @router.post("/runs/log-model")
    def log_inputs(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        run = bridge_of(request).run(text(data, "run_id"))
        what = request.url.path.rsplit("/", 1)[-1]
        audit_write(request, caller, f"mlflow.run.{what}", f"run {run.id}")
        return {}

    @router.get("/metrics/get-history", dependencies=[viewer])
    def metric_history(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        bridge = bridge_of(request)
        run = bridge.run(text(data, "run_id", required=False) or text(data, "run_uuid"))
        key = text(data, "metric_key")
        points = [
            m for m in bridge.workspace.metadata.get_metrics(run.id, key) if m.execution_id is None
        ]
        page, token = page_of(points, data, default=25_000)
        return {"metrics": [metric_json(m) for m in page], **token}

    return router


def log_one_item(request: Request, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``runs/log-metric``, ``runs/log-parameter`` or ``runs/set-tag`` (by the path's last
    part): one item of ``data`` written with its audit entry."""
    kind, record_of = _ONE_ITEM[request.url.path.rsplit("/", 1)[-1]]
    run_id = _writable(request, data)
    _log(request, caller, run_id, {kind: 1}, **{kind: [record_of(run_id, data)]})
    return {}


def log_metric_now(request: Request, data: dict[str, Any], caller: Caller) -> bool:
    """``runs/log-metric`` as :func:`log_one_item` writes it, if the run is known to
    exist (no store call to check it) and the write can be made at once (see
    :func:`~ctloop.server._deps.log_metrics_now`); ``False`` (nothing written) otherwise.
    A bad field is refused as :func:`log_one_item` refuses it."""
    run_id = text(data, "run_id", required=False) or text(data, "run_uuid")
    bridge = bridge_of(request)
    if not bridge.knows_run(run_id):
        return False
    metric = _metric_record(run_id, data)
    if metric.execution_id is not None:
        return False  # a logged model's metric: checked against the model first
    draft = audit_draft(request, caller, "mlflow.run.log", f"run {run_id}", {"metrics": 1})
    return log_metrics_now(bridge.workspace, draft, [metric])


def log_batch_items(request: Request, data: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """``runs/log-batch``: the metrics, params and tags of ``data`` within MLflow's
    limits, written in one transaction with the audit entry."""
    run_id = _writable(request, data)
    counts, params, metrics, tags = _batch(run_id, data)
    _log(request, caller, run_id, counts, params=params, metrics=metrics, tags=tags)
    return {}


def log_batch_now(request: Request, data: dict[str, Any], caller: Caller) -> bool:
    """``runs/log-batch`` as :func:`log_batch_items` writes it, if it holds only metrics
    (at most :data:`MAX_METRICS_NOW`) of a run known to exist and the write can be made at
    once; ``False`` (nothing written) otherwise. A bad batch is refused as
    :func:`log_batch_items` refuses it."""
    run_id = text(data, "run_id", required=False) or text(data, "run_uuid")
    bridge = bridge_of(request)
    if not bridge.knows_run(run_id):
        return False
    counts, params, metrics, tags = _batch(run_id, data)
    if params or tags or len(metrics) > MAX_METRICS_NOW:
        return False
    if any(m.execution_id is not None for m in metrics):
        return False  # a logged model's metrics: checked against the model first
    draft = audit_draft(request, caller, "mlflow.run.log", f"run {run_id}", counts)
    return log_metrics_now(bridge.workspace, draft, metrics)


def _batch(
    run_id: str, data: dict[str, Any]
) -> tuple[dict[str, int], list[ParamRecord], list[MetricRecord], list[TagRecord]]:
    """The items of a ``runs/log-batch`` request as records, within MLflow's limits, and
    how many of each it holds."""
    metrics, params, tags = (_items(data, k) for k in ("metrics", "params", "tags"))
    for name, items, most in (
        ("metrics", metrics, MAX_METRICS),
        ("params", params, MAX_PARAMS),
        ("tags", tags, MAX_TAGS),
    ):
        if len(items) > most:
            raise MlflowError.invalid(f"a batch may hold at most {most} {name}; got {len(items)}")
    if len(metrics) + len(params) + len(tags) > MAX_ITEMS:
        raise MlflowError.invalid(
            f"a batch may hold at most {MAX_ITEMS} metrics, params and tags in all; got "
            f"{len(metrics) + len(params) + len(tags)}"
        )
    counts = {"metrics": len(metrics), "params": len(params), "tags": len(tags)}
    return (
        counts,
        [_param(run_id, p) for p in params],
        [_metric_record(run_id, m) for m in metrics],
        [_tag(run_id, t) for t in tags],
    )


def _writable(request: Request, data: dict[str, Any]) -> str:
    """The id of the run a write names (MLflow lets a finished run be written to as
    well)."""
    run_id = text(data, "run_id", required=False) or text(data, "run_uuid")
    return bridge_of(request).existing_run_id(run_id)


def _log(
    request: Request,
    caller: Caller,
    run_id: str,
    counts: dict[str, int],
    *,
    params: Sequence[ParamRecord] = (),
    metrics: Sequence[MetricRecord] = (),
    tags: Sequence[TagRecord] = (),
) -> None:
    """Write in one transaction with the write's audit entry; a param logged before
    must keep its value. A metric naming a logged model (``model_id``) is that model's,
    not the run's history."""
    bridge = bridge_of(request)
    store = bridge.workspace.metadata
    linked = [m for m in metrics if m.execution_id is not None]
    if linked:
        metrics = _with_run_copies(bridge, run_id, metrics, linked)
    if params:
        held = {p.key: p.value for p in store.get_params(run_id) if p.execution_id is None}
        seen: dict[str, str] = {}
        for param in params:
            before = held.get(param.key, seen.get(param.key))
            if before is not None and before != param.value:
                raise MlflowError.invalid(
                    f"changing param values is not allowed: param {param.key!r} of run "
                    f"{run_id} was logged as {before!r}, now {param.value!r}"
                )
            seen[param.key] = param.value
    draft = audit_draft(request, caller, "mlflow.run.log", f"run {run_id}", counts)
    try:
        log_tracking_audited(bridge.workspace, draft, params=params, metrics=metrics, tags=tags)
    except (IntegrityError, NotFoundError):
        bridge.forget_run(run_id)
        bridge.run(run_id)  # gone since it was checked: MLflow's RESOURCE_DOES_NOT_EXIST
        raise


def _with_run_copies(
    bridge: Bridge, run_id: str, metrics: Sequence[MetricRecord], linked: list[MetricRecord]
) -> list[MetricRecord]:
    """A metric of a logged model is the run's too, as in MLflow, where logging the same
    point again (the client does, when it links a run's metrics to a model) adds nothing."""
    for model_id in {m.execution_id for m in linked}:
        assert model_id is not None
        if bridge.logged_model(model_id).run_id != run_id:
            raise MlflowError.invalid(f"logged model {model_id} was not logged by run {run_id}")
    held = {
        _point_key(m)
        for m in bridge.workspace.metadata.get_metrics(run_id)
        if m.execution_id is None
    }
    found = list(metrics)
    for metric in linked:
        copy = MetricRecord(
            metric.run_id, metric.key, metric.value, metric.step, None, metric.timestamp
        )
        if _point_key(copy) not in held:
            held.add(_point_key(copy))
            found.append(copy)
    return found


def _point_key(metric: MetricRecord) -> tuple[Any, ...]:
    value = "nan" if math.isnan(metric.value) else metric.value
    return (metric.key, metric.step or 0, to_ms(metric.timestamp), value)


def _items(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise MlflowError.invalid(f"{key!r} must be a list of objects")
    return items


def _param(run_id: str, item: dict[str, Any]) -> ParamRecord:
    key = check_key(item, "param")
    value = "" if item.get("value") is None else str(item["value"])
    if len(value) > MAX_PARAM_VALUE:
        raise MlflowError.invalid(
            f"param {key!r} has a value of {len(value)} characters; at most {MAX_PARAM_VALUE}"
        )
    return ParamRecord(run_id, key, value)


def _metric_record(run_id: str, item: dict[str, Any]) -> MetricRecord:
    key = check_key(item, "metric")
    if "value" not in item:
        raise MlflowError.invalid(f"metric {key!r} has no 'value'")
    stamp = integer(item, "timestamp")
    model_id = item.get("model_id") or None
    return MetricRecord(
        run_id,
        key,
        number(item["value"], key),
        step=integer(item, "step", 0),
        execution_id=None if model_id is None else str(model_id),
        timestamp=utcnow() if stamp is None else from_ms(stamp),
    )


def _tag(run_id: str, item: dict[str, Any]) -> TagRecord:
    key = check_key(item, "tag")
    if key.startswith(HIDDEN):
        raise MlflowError.invalid(f"tag keys starting with {HIDDEN!r} are this server's own")
    return TagRecord(run_id, key, "" if item.get("value") is None else str(item["value"]))


#: the kind and the record of the one item each single-item route logs
_ONE_ITEM: dict[str, tuple[str, Callable[[str, dict[str, Any]], Any]]] = {
    "log-parameter": ("params", _param),
    "log-metric": ("metrics", _metric_record),
    "set-tag": ("tags", _tag),
}


def _run_sort(run: dict[str, Any], kind: str, key: str) -> Any:
    return _run_value(run)(kind, key)


def _ordered(
    runs: list[dict[str, Any]], kind: str, key: str, ascending: bool
) -> list[dict[str, Any]]:
    """``runs`` sorted (stably) by one ``order_by`` item, as MLflow's SQL store sorts:
    the values in the asked direction, then NaN metrics, then runs without the value."""
    values = [_run_value(run)(kind, key) for run in runs]
    nan = [run for run, v in zip(runs, values, strict=True) if _is_nan(v)]
    absent = [run for run, v in zip(runs, values, strict=True) if v is None]
    present = [run for run, v in zip(runs, values, strict=True) if v is not None and not _is_nan(v)]
    present.sort(key=partial(_run_sort, kind=kind, key=key), reverse=not ascending)
    return present + nan + absent


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _run_value(run: dict[str, Any]) -> Any:
    info, data = run["info"], run["data"]

    def value(kind: str, key: str) -> Any:
        if kind == "attributes":
            key = {"run_name": "run_name", "run_id": "run_id", "created": "start_time"}.get(
                key, key
            )
            if key == "Created":
                key = "start_time"
            return info.get(key)
        items = data[kind]
        for item in items:
            if item["key"] == key:
                found = item["value"]
                if kind == "metrics" and isinstance(found, str):  # "NaN", "Infinity", …
                    return float(found)
                return found
        return None

    return value
