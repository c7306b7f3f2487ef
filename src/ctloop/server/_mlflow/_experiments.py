"""MLflow's experiments: create, get (by id or name), search, rename, tag, delete and
restore. An experiment is a pipeline name (see :mod:`ctloop.server._mlflow._bridge`)."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request

from ctloop.server._auth import Caller
from ctloop.server._deps import audit_write
from ctloop.server._mlflow._bridge import Experiment, bridge_of
from ctloop.server._mlflow._fields import in_view, page_of, tag_map
from ctloop.server._mlflow._protocol import MlflowError, mlflow_router, text
from ctloop.server._mlflow._search import matches, parse_filter, parse_order

__all__ = ["experiments_router"]


def experiments_router() -> APIRouter:
    """The routes of experiments (mounted under ``/api/2.0/mlflow``)."""
    router, viewer, editor, body = mlflow_router()

    @router.post("/experiments/create")
    def create_experiment(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        name = text(data, "name")
        if data.get("artifact_location"):
            raise MlflowError.invalid(
                "artifact_location cannot be chosen: this server keeps artifacts in its "
                "workspace's artifact store (leave it out)"
            )
        experiment = bridge_of(request).create_experiment(name, tag_map(data.get("tags")))
        audit_write(request, caller, "mlflow.experiment.create", f"experiment {experiment.id}")
        return {"experiment_id": experiment.id}

    @router.get("/experiments/get", dependencies=[viewer])
    def get_experiment(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        experiment = bridge_of(request).experiment(text(data, "experiment_id"))
        return {"experiment": experiment.render()}

    @router.get("/experiments/get-by-name", dependencies=[viewer])
    def get_experiment_by_name(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        experiment = bridge_of(request).experiment_named(text(data, "experiment_name"))
        return {"experiment": experiment.render()}

    @router.post("/experiments/search", dependencies=[viewer])
    @router.get("/experiments/search", dependencies=[viewer])
    def search_experiments(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        clauses = parse_filter(data.get("filter"))
        view = str(data.get("view_type") or "ACTIVE_ONLY")
        found = [
            e
            for e in bridge_of(request).experiments()
            if in_view(e.deleted, view) and matches(clauses, _experiment_value(e))
        ]
        order = parse_order(data.get("order_by")) or [("attributes", "creation_time", False)]
        for _, key, ascending in reversed(order):
            found.sort(key=partial(_experiment_sort, key=key), reverse=not ascending)
        page, token = page_of(found, data, default=1000)
        return {"experiments": [e.render() for e in page], **token}

    @router.post("/experiments/update")
    def update_experiment(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        experiment_id, name = text(data, "experiment_id"), text(data, "new_name")
        if any(e.name == name and e.id != experiment_id for e in bridge.experiments()):
            raise MlflowError.exists(f"experiment {name!r}")
        bridge.change_experiment(experiment_id, name=name)
        audit_write(request, caller, "mlflow.experiment.update", f"experiment {experiment_id}")
        return {}

    @router.post("/experiments/delete")
    @router.post("/experiments/restore")
    def delete_experiment(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        deleting = request.url.path.endswith("/delete")
        experiment_id = text(data, "experiment_id")
        if deleting and experiment_id == "0":
            raise MlflowError.invalid("the Default experiment cannot be deleted")
        bridge_of(request).change_experiment(experiment_id, deleted=deleting)
        action = "delete" if deleting else "restore"
        audit_write(request, caller, f"mlflow.experiment.{action}", f"experiment {experiment_id}")
        return {}

    @router.post("/experiments/set-experiment-tag")
    def set_experiment_tag(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        experiment = bridge.experiment(text(data, "experiment_id"))
        key, value = text(data, "key"), text(data, "value", required=False)
        bridge.change_experiment(experiment.id, tags={**experiment.tags, key: value})
        audit_write(request, caller, "mlflow.experiment.tag", f"experiment {experiment.id}")
        return {}

    return router


def _experiment_value(experiment: Experiment) -> Any:
    def value(kind: str, key: str) -> Any:
        if kind == "tags":
            return experiment.tags.get(key)
        if kind == "attributes":
            return {
                "name": experiment.name,
                "experiment_id": experiment.id,
                "creation_time": experiment.creation_ms,
                "last_update_time": experiment.creation_ms,
            }.get(key)
        return None

    return value


def _experiment_sort(experiment: Experiment, key: str) -> Any:
    return _experiment_value(experiment)("attributes", key) or 0
