"""MLflow's model registry over ctloop's: registered models, versions and aliases.

A registered version points at one ``mlflow.model`` artifact holding the logged model's
files, made by the run that logged it; its status is always ``READY``, since its files
are in the artifact store before it is created. Stages are not kept (MLflow deprecated
them for aliases): ``get-latest-versions`` answers the latest version under stage
``None``. Moving a production alias (``champion``, ``production``) needs an admin key, as
on ctloop's own API.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request

from ctloop.errors import AliasNotFoundError, ModelNotFoundError, ModelVersionNotFoundError
from ctloop.server._auth import Caller
from ctloop.server._deps import audit_write
from ctloop.server._mlflow._bridge import HIDDEN, Bridge, bridge_of
from ctloop.server._mlflow._fields import page_of, tag_map
from ctloop.server._mlflow._protocol import (
    MlflowError,
    integer,
    mlflow_router,
    text,
    to_ms,
)
from ctloop.server._mlflow._search import matches, parse_filter
from ctloop.server._registry import _check_production
from ctloop.store.registry import ModelVersion, RegisteredModel

__all__ = ["registry_router", "render_model", "render_version"]

SOURCE, MODEL_ID = HIDDEN + "source", HIDDEN + "model_id"


def render_version(version: ModelVersion) -> dict[str, Any]:
    """MLflow's JSON of a registered model version."""
    return {
        "name": version.model,
        "version": str(version.version),
        "creation_timestamp": to_ms(version.created_at),
        "last_updated_timestamp": to_ms(version.created_at),
        "user_id": version.created_by,
        "current_stage": "None",
        "description": version.description,
        "source": version.tags.get(SOURCE, ""),
        "run_id": version.run_id or "",
        "status": "READY",
        "tags": [
            {"key": k, "value": v}
            for k, v in sorted(version.tags.items())
            if not k.startswith(HIDDEN)
        ],
        "aliases": list(version.aliases),
        "model_id": version.tags.get(MODEL_ID, ""),
    }


def render_model(bridge: Bridge, model: RegisteredModel) -> dict[str, Any]:
    """MLflow's JSON of a registered model, with its latest version."""
    latest = []
    if model.latest_version is not None:
        latest = [
            render_version(bridge.workspace.registry.get_version(model.name, model.latest_version))
        ]
    return {
        "name": model.name,
        "creation_timestamp": to_ms(model.created_at),
        "last_updated_timestamp": to_ms(model.updated_at),
        "description": model.description,
        "tags": [{"key": k, "value": v} for k, v in sorted(model.tags.items())],
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(model.aliases.items())],
        "latest_versions": latest,
    }


def registry_router() -> APIRouter:
    """The routes of the registry (mounted under ``/api/2.0/mlflow``)."""
    router, viewer, editor, body = mlflow_router()

    @router.post("/registered-models/create")
    def create_registered_model(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        name = text(data, "name")
        registry = bridge.workspace.registry
        if any(m.name == name for m in registry.list_models()):
            raise MlflowError.exists(f"registered model {name!r}")
        model = registry.create_model(
            name, description=str(data.get("description") or ""), tags=tag_map(data.get("tags"))
        )
        audit_write(request, caller, "model.create", f"model {name}")
        return {"registered_model": render_model(bridge, model)}

    @router.get("/registered-models/get", dependencies=[viewer])
    def get_registered_model(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        bridge = bridge_of(request)
        model = _model(bridge, text(data, "name"))
        return {"registered_model": render_model(bridge, model)}

    @router.get("/registered-models/search", dependencies=[viewer])
    @router.post("/registered-models/search", dependencies=[viewer])
    def search_registered_models(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        bridge = bridge_of(request)
        clauses = parse_filter(data.get("filter"))
        models = [
            m
            for m in bridge.workspace.registry.list_models()
            if matches(clauses, partial(_registered_value, m))
        ]
        page, token = page_of(models, data, default=100)
        return {"registered_models": [render_model(bridge, m) for m in page], **token}

    @router.patch("/registered-models/update")
    def update_registered_model(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        model = _model(bridge, text(data, "name"))
        bridge.workspace.registry.update_description(model.name, str(data.get("description") or ""))
        audit_write(request, caller, "model.update", f"model {model.name}")
        return {"registered_model": render_model(bridge, _model(bridge, model.name))}

    @router.post("/registered-models/set-tag")
    @router.post("/model-versions/set-tag")
    def set_registry_tag(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        model = _model(bridge, text(data, "name"))
        key, value = text(data, "key"), text(data, "value", required=False)
        if key.startswith(HIDDEN):
            raise MlflowError.invalid(f"tag keys starting with {HIDDEN!r} are this server's own")
        version = integer(data, "version") if "/model-versions/" in request.url.path else None
        bridge.workspace.registry.set_tag(model.name, key, value, version=version)
        audit_write(request, caller, "model.tag.set", f"model {model.name}", {"key": key})
        return {}

    @router.post("/registered-models/get-latest-versions", dependencies=[viewer])
    @router.get("/registered-models/get-latest-versions", dependencies=[viewer])
    def get_latest_versions(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        bridge = bridge_of(request)
        model = _model(bridge, text(data, "name"))
        stages = data.get("stages") or []
        stages = [stages] if isinstance(stages, str) else stages
        versions = []
        wants_none = not stages or any(str(s).lower() == "none" for s in stages)
        if model.latest_version is not None and wants_none:
            latest = bridge.workspace.registry.get_version(model.name, model.latest_version)
            versions = [render_version(latest)]
        return {"model_versions": versions}

    @router.post("/registered-models/alias")
    def set_alias(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        name, alias = text(data, "name"), text(data, "alias")
        version = integer(data, "version")
        if version is None:
            raise MlflowError.invalid("missing value for required parameter 'version'")
        _model(bridge, name)
        _check_production(request, caller, alias)
        move = bridge.workspace.registry.set_alias(name, alias, version, by=caller.name)
        detail = {"version": version, "moved": move is not None, "reason": ""}
        audit_write(request, caller, "alias.set", f"{name}@{alias}", detail)
        return {}

    @router.get("/registered-models/alias", dependencies=[viewer])
    def get_by_alias(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        bridge = bridge_of(request)
        name, alias = text(data, "name"), text(data, "alias")
        _model(bridge, name)
        try:
            version = bridge.workspace.registry.get_by_alias(name, alias)
        except AliasNotFoundError:
            raise MlflowError.missing(f"alias {alias!r} of registered model {name!r}") from None
        return {"model_version": render_version(version)}

    @router.delete("/registered-models/alias")
    def delete_alias(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        name, alias = text(data, "name"), text(data, "alias")
        _model(bridge, name)
        _check_production(request, caller, alias)
        move = bridge.workspace.registry.delete_alias(name, alias, by=caller.name)
        detail = {"from_version": move.from_version, "reason": ""}
        audit_write(request, caller, "alias.delete", f"{name}@{alias}", detail)
        return {}

    # -- model versions -----------------------------------------------------------------
    @router.post("/model-versions/create")
    def create_model_version(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        bridge = bridge_of(request)
        name = text(data, "name")
        _model(bridge, name)
        source = text(data, "source", required=False)
        model_id = text(data, "model_id", required=False)
        if not model_id and source.startswith("models:/m-"):
            model_id = source.removeprefix("models:/").split("/", 1)[0]
        if model_id:
            owner, prefix = bridge.logged_model(model_id).id, ""
        else:
            owner, prefix = _owner_of_source(bridge, source, text(data, "run_id", required=False))
        artifact = bridge.model_artifact(owner, prefix)
        execution = bridge.workspace.metadata.get_execution(owner)
        tags = {**tag_map(data.get("tags")), SOURCE: source or f"models:/{model_id}"}
        if model_id:
            tags[MODEL_ID] = model_id
        version = bridge.workspace.registry.register_version(
            name,
            artifact.id,
            run_id=execution.run_id,
            execution_id=execution.id,
            description=str(data.get("description") or ""),
            tags=tags,
            by=caller.name,
        )
        detail = {"version": version.version, "artifact_id": artifact.id}
        audit_write(request, caller, "model.register", f"model {name}", detail)
        return {"model_version": render_version(version)}

    @router.get("/model-versions/get", dependencies=[viewer])
    def get_model_version(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        return {"model_version": render_version(_version(request, data))}

    @router.get("/model-versions/get-download-uri", dependencies=[viewer])
    def download_uri(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        version = _version(request, data)
        bridge = bridge_of(request)
        model_id = version.tags.get(MODEL_ID)
        if model_id:
            model = bridge.logged_model(model_id)
            experiment_id = model.parameters.get("experiment_id", "0")
            return {
                "artifact_uri": f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts"
            }
        return {"artifact_uri": version.tags.get(SOURCE, "")}

    @router.get("/model-versions/search", dependencies=[viewer])
    @router.post("/model-versions/search", dependencies=[viewer])
    def search_model_versions(request: Request, data: dict[str, Any] = body) -> dict[str, Any]:
        bridge = bridge_of(request)
        clauses = parse_filter(data.get("filter"))
        found = []
        for model in bridge.workspace.registry.list_models():
            for version in bridge.workspace.registry.list_versions(model.name):
                shown = render_version(version)
                if matches(clauses, partial(_version_value, shown)):
                    found.append(shown)
        found.sort(key=lambda v: (v["name"], -int(v["version"])))
        page, token = page_of(found, data, default=10_000)
        return {"model_versions": page, **token}

    @router.patch("/model-versions/update")
    def update_model_version(
        request: Request, data: dict[str, Any] = body, caller: Caller = editor
    ) -> dict[str, Any]:
        version = _version(request, data)
        registry = bridge_of(request).workspace.registry
        registry.update_description(
            version.model, str(data.get("description") or ""), version=version.version
        )
        audit_write(request, caller, "model.version.update", f"model {version.reference}")
        return {
            "model_version": render_version(registry.get_version(version.model, version.version))
        }

    @router.post("/model-versions/transition-stage", dependencies=[editor])
    def transition_stage(request: Request) -> dict[str, Any]:
        raise MlflowError(
            "BAD_REQUEST",
            "model stages are not kept by this server (MLflow deprecated them); use aliases: "
            "MlflowClient().set_registered_model_alias(name, 'champion', version)",
        )

    return router


def _owner_of_source(bridge: Bridge, source: str, run_id: str) -> tuple[str, str]:
    """The execution and the folder a 2.x ``source`` names."""
    if source.startswith("runs:/"):
        run, _, prefix = source.removeprefix("runs:/").partition("/")
        experiment = bridge.experiment_of(bridge.run(run))
        return bridge.owner(f"{experiment.id}/{run}/artifacts/{prefix}")
    if source.startswith("mlflow-artifacts:"):
        path = source.removeprefix("mlflow-artifacts:").lstrip("/")
        if "://" in source:
            path = path.split("/", 1)[1] if "/" in path else ""
        return bridge.owner(path)
    raise MlflowError.invalid(
        f"model version source {source!r} is not one this server holds; give "
        "models:/MODEL_ID, runs:/RUN_ID/PATH or an mlflow-artifacts:/ URI of this server"
    )


def _model(bridge: Bridge, name: str) -> RegisteredModel:
    try:
        return bridge.workspace.registry.get_model(name)
    except ModelNotFoundError:
        raise MlflowError.missing(f"registered model with name {name!r}") from None


def _version(request: Request, data: dict[str, Any]) -> ModelVersion:
    bridge = bridge_of(request)
    model = _model(bridge, text(data, "name"))
    number = integer(data, "version")
    if number is None:
        raise MlflowError.invalid("missing value for required parameter 'version'")
    try:
        return bridge.workspace.registry.get_version(model.name, number)
    except ModelVersionNotFoundError:
        raise MlflowError.missing(f"version {number} of model {model.name!r}") from None


def _registered_value(model: RegisteredModel, kind: str, key: str) -> Any:
    if kind == "tags":
        return model.tags.get(key)
    return {"name": model.name}.get(key) if kind == "attributes" else None


def _version_value(version: dict[str, Any], kind: str, key: str) -> Any:
    if kind == "tags":
        return next((t["value"] for t in version["tags"] if t["key"] == key), None)
    if kind == "attributes":
        return {"source_path": version["source"]}.get(key, version.get(key))
    return None
