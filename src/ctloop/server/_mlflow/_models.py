"""MLflow 3's logged models: a model logged by a run, with its params, tags, metrics and
files, before (and whether or not) it is registered.

A logged model is an execution of its source run (step ``mlflow-model``); finalizing it
as ``READY`` makes its files one ``mlflow.model`` artifact, the one a registered version
of it points at (see :mod:`ctloop.server._mlflow._registry`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ctloop.server._auth import Caller
from ctloop.server._deps import audit_write
from ctloop.server._mlflow._artifacts import listing
from ctloop.server._mlflow._bridge import MODEL_STEP, Bridge, bridge_of
from ctloop.server._mlflow._fields import page_of, tag_map
from ctloop.server._mlflow._protocol import MlflowError, mlflow_router, text, to_ms
from ctloop.server._mlflow._search import matches, parse_filter
from ctloop.server._mlflow._tracking import metric_json
from ctloop.store.records import ExecutionRecord, ParamRecord, TagRecord, utcnow
from ctloop.store.statuses import ExecutionStatus

__all__ = ["logged_models_router", "render_logged_model"]

_STATUSES = {
    "LOGGED_MODEL_PENDING": ExecutionStatus.PENDING,
    "LOGGED_MODEL_READY": ExecutionStatus.SUCCEEDED,
    "LOGGED_MODEL_UPLOAD_FAILED": ExecutionStatus.FAILED,
    "1": ExecutionStatus.PENDING,
    "2": ExecutionStatus.SUCCEEDED,
    "3": ExecutionStatus.FAILED,
}


def render_logged_model(bridge: Bridge, model: ExecutionRecord) -> dict[str, Any]:
    """MLflow's JSON of a logged model."""
    store = bridge.workspace.metadata
    status = {
        ExecutionStatus.SUCCEEDED: "LOGGED_MODEL_READY",
        ExecutionStatus.FAILED: "LOGGED_MODEL_UPLOAD_FAILED",
    }.get(ExecutionStatus(model.status), "LOGGED_MODEL_PENDING")
    experiment_id = str(model.parameters.get("experiment_id", "0"))
    tags = [t for t in store.get_tags(model.run_id) if t.execution_id == model.id]
    params = [p for p in store.get_params(model.run_id) if p.execution_id == model.id]
    return {
        "info": {
            "model_id": model.id,
            "experiment_id": experiment_id,
            "name": str(model.parameters.get("name", "")),
            "creation_timestamp_ms": to_ms(model.started_at),
            "last_updated_timestamp_ms": to_ms(model.ended_at or model.started_at),
            "artifact_uri": f"mlflow-artifacts:/{experiment_id}/models/{model.id}/artifacts",
            "status": status,
            "model_type": str(model.parameters.get("model_type", "")),
            "source_run_id": str(model.parameters.get("source_run_id", "")),
            "tags": [{"key": t.key, "value": t.value} for t in tags],
        },
        "data": {
            "params": [{"key": p.key, "value": p.value} for p in params],
            "metrics": [
                {**metric_json(m), "model_id": model.id, "run_id": model.run_id}
                for m in store.get_metrics(model.run_id)
                if m.execution_id == model.id
            ],
        },
    }


def logged_models_router() -> APIRouter:
    """The routes of MLflow 3's logged models (mounted under ``/api/2.0/mlflow``)."""
    router, viewer, editor, body = mlflow_router()

    @router.post("/logged-models")
    def create_logged_model(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        experiment = bridge.experiment(text(data, "experiment_id", required=False, default="0"))
        source = text(data, "source_run_id", required=False) or None
        model = bridge.create_logged_model(
            experiment,
            name=text(data, "name", required=False, default="model"),
            model_type=text(data, "model_type", required=False),
            source_run_id=source,
            user=caller.name,
        )
        _log_model_data(bridge, model, params=data.get("params"), tags=data.get("tags"))
        audit_write(request, caller, "mlflow.model.create", f"logged model {model.id}")
        return {"model": render_logged_model(bridge, model)}

    @router.post("/logged-models/search", dependencies=[viewer])
    def search_logged_models(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        bridge = bridge_of(request)
        ids = data.get("experiment_ids") or []
        experiments = [bridge.experiment(str(i)) for i in ([ids] if isinstance(ids, str) else ids)]
        clauses = parse_filter(data.get("filter"))
        found = []
        for run in bridge.runs_of(experiments):
            for execution in bridge.workspace.metadata.list_executions(run.id):
                if execution.step != MODEL_STEP:
                    continue
                shown = render_logged_model(bridge, execution)
                if matches(clauses, _model_value(shown)):
                    found.append(shown)
        found.sort(key=lambda m: m["info"]["creation_timestamp_ms"] or 0, reverse=True)
        page, token = page_of(found, data, default=100)
        return {"models": page, **token}

    @router.get("/logged-models/{model_id}", dependencies=[viewer])
    def get_logged_model(request: Request, model_id: str) -> dict[str, Any]:
        bridge = bridge_of(request)
        return {"model": render_logged_model(bridge, bridge.logged_model(model_id))}

    @router.patch("/logged-models/{model_id}")
    def finalize_logged_model(
        request: Request, model_id: str, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        model = bridge.logged_model(model_id)
        status = _STATUSES.get(str(data.get("status")))
        if status is None:
            raise MlflowError.invalid(
                f"status {data.get('status')!r} is not LOGGED_MODEL_READY, "
                "LOGGED_MODEL_PENDING or LOGGED_MODEL_UPLOAD_FAILED"
            )
        store = bridge.workspace.metadata
        store.update_execution(model.id, status=status, ended_at=utcnow())
        if status == ExecutionStatus.SUCCEEDED and "MLmodel" in bridge.files(model.id):
            bridge.model_artifact(model.id)
        audit_write(request, caller, "mlflow.model.finalize", f"logged model {model.id}")
        return {"model": render_logged_model(bridge, store.get_execution(model.id))}

    @router.delete("/logged-models/{model_id}")
    def delete_logged_model(
        request: Request, model_id: str, caller: Caller = editor
    ) -> dict[str, Any]:
        raise MlflowError(
            "BAD_REQUEST",
            "deleting a logged model is not supported by this server; it is removed with "
            "its run by `ctloop gc`",
        )

    @router.patch("/logged-models/{model_id}/tags")
    @router.post("/logged-models/{model_id}/params")
    def log_model_data(
        request: Request, model_id: str, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        model = bridge.logged_model(model_id)
        if request.url.path.endswith("/tags"):
            _log_model_data(bridge, model, tags=data.get("tags"))
        else:
            _log_model_data(bridge, model, params=data.get("params"))
        audit_write(request, caller, "mlflow.model.log", f"logged model {model.id}")
        return {}

    @router.get("/logged-models/{model_id}/artifacts/directories", dependencies=[viewer])
    def list_logged_model_artifacts(
        request: Request, model_id: str, data: dict[str, Any] = body
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        model = bridge.logged_model(model_id)
        folder = text(data, "artifact_directory_path", required=False)
        experiment_id = model.parameters.get("experiment_id", "0")
        return {
            "root_uri": f"mlflow-artifacts:/{experiment_id}/models/{model.id}/artifacts",
            "files": listing(bridge.files(model.id), folder),
        }

    return router


def _log_model_data(
    bridge: Bridge, model: ExecutionRecord, *, params: Any = None, tags: Any = None
) -> None:
    param_records = [
        ParamRecord(model.run_id, str(p["key"]), str(p.get("value", "")), execution_id=model.id)
        for p in params or []
    ]
    tag_records = [
        TagRecord(model.run_id, key, value, execution_id=model.id)
        for key, value in tag_map(tags).items()
    ]
    if param_records or tag_records:
        bridge.workspace.metadata.log_batch(params=param_records, tags=tag_records)


def _model_value(model: dict[str, Any]) -> Any:
    info = model["info"]

    def value(kind: str, key: str) -> Any:
        if kind == "attributes":
            return info.get(key)
        items = model["data"]["params"] if kind == "params" else info["tags"]
        return next((i["value"] for i in items if i["key"] == key), None)

    return value
