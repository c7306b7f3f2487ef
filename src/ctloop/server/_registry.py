"""The model registry: models, versions, aliases and their history; moving an alias.

An editor may set or delete an alias, except a production alias (``champion`` and
``production`` unless the server is created with others): those need an admin. Every
move is in the registry's alias history (with the key's name as ``moved_by``) and in the
audit log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from ctloop.server._auth import Authenticator, Caller
from ctloop.server._deps import MAX_NUMBER, Number, audit_write, needs, render, workspace_of
from ctloop.server._errors import PermissionDeniedError
from ctloop.server._paging import MAX_LIMIT, page_of
from ctloop.store._keys import Role
from ctloop.store.registry import AliasMove, ModelVersion, RegisteredModel

if TYPE_CHECKING:
    from ctloop.registry._card import ModelCard
    from ctloop.store.workspace import Workspace

__all__ = [
    "PRODUCTION_ALIASES",
    "move_alias",
    "registry_router",
    "roll_back_alias",
    "version_card",
]

#: aliases only an admin may move, unless the server is created with others
PRODUCTION_ALIASES = frozenset({"champion", "production"})


def registry_router() -> APIRouter:
    """The routes of the model registry."""

    router = APIRouter(tags=["registry"])
    viewer, editor = Depends(needs(Role.VIEWER)), Depends(needs(Role.EDITOR))

    @router.get("/models", dependencies=[viewer], summary="List registered models by name")
    def list_models(
        request: Request, cursor: str | None = None, limit: int = Query(100, ge=1, le=MAX_LIMIT)
    ) -> dict[str, Any]:
        models = sorted(workspace_of(request).registry.list_models(), key=_model_key)
        return page_of(models, key=_model_key, cursor=cursor, limit=limit, render=render)

    @router.get("/models/{name}", dependencies=[viewer], summary="A model and its aliases")
    def get_model(request: Request, name: str) -> dict[str, Any]:
        return render(workspace_of(request).registry.get_model(name))

    @router.get("/models/{name}/versions", dependencies=[viewer], summary="A model's versions")
    def list_versions(
        request: Request,
        name: str,
        cursor: str | None = None,
        limit: int = Query(100, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        versions = workspace_of(request).registry.list_versions(name)
        return page_of(versions, key=_version_key, cursor=cursor, limit=limit, render=render)

    @router.get("/models/{name}/versions/{version}", dependencies=[viewer], summary="One version")
    def get_version(request: Request, name: str, version: Number) -> dict[str, Any]:
        return render(workspace_of(request).registry.get_version(name, version))

    @router.get(
        "/models/{name}/aliases", dependencies=[viewer], summary="Aliases and their history"
    )
    def aliases(
        request: Request,
        name: str,
        alias: str | None = Query(None, description="the history of this alias only"),
        cursor: str | None = None,
        limit: int = Query(100, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        registry = workspace_of(request).registry
        model = registry.get_model(name)
        moves = registry.alias_history(model.name, alias)
        page = page_of(moves, key=_move_key, cursor=cursor, limit=limit, render=render)
        return {"model": model.name, "aliases": model.aliases, "history": page}

    @router.put("/models/{name}/aliases/{alias}", summary="Point an alias at a version")
    def set_alias(
        request: Request,
        name: str,
        alias: str,
        version: int = Body(..., embed=True, ge=1, le=MAX_NUMBER),
        reason: str = Body("", embed=True, max_length=2000),
        caller: Caller = editor,
    ) -> dict[str, Any]:
        move = move_alias(request, caller, name, alias, version, reason=reason)
        return {"model": name, "alias": alias, "version": version, "move": render(move)}

    @router.delete("/models/{name}/aliases/{alias}", summary="Remove an alias")
    def delete_alias(
        request: Request, name: str, alias: str, reason: str = "", caller: Caller = editor
    ) -> dict[str, Any]:
        _check_production(request, caller, alias)
        move = workspace_of(request).registry.delete_alias(
            name, alias, by=caller.name, reason=reason
        )
        detail = {"from_version": move.from_version, "reason": reason}
        audit_write(request, caller, "alias.delete", f"{name}@{alias}", detail)
        return {"model": name, "alias": alias, "move": render(move)}

    @router.post(
        "/models/{name}/aliases/{alias}/rollback",
        summary="Move an alias back to the version it held before its latest move",
    )
    def rollback(
        request: Request,
        name: str,
        alias: str,
        reason: str = Body("", embed=True, max_length=2000),
        caller: Caller = editor,
    ) -> dict[str, Any]:
        move = roll_back_alias(request, caller, name, alias, reason=reason)
        return {"model": name, "alias": alias, "move": render(move)}

    @router.get(
        "/models/{name}/versions/{version}/card",
        dependencies=[viewer],
        summary="The model card of one version",
    )
    def card(request: Request, name: str, version: Number) -> dict[str, Any]:
        return render(version_card(workspace_of(request), name, version).to_dict())

    return router


def move_alias(
    request: Request, caller: Caller, name: str, alias: str, version: int, *, reason: str = ""
) -> AliasMove | None:
    """Point ``alias`` at ``version`` as ``caller`` (an admin for a production alias),
    recorded in the alias history and the audit log: ``ctloop models alias`` over HTTP."""
    _check_production(request, caller, alias)
    move = workspace_of(request).registry.set_alias(
        name, alias, version, by=caller.name, reason=reason
    )
    detail = {"version": version, "moved": move is not None, "reason": reason}
    audit_write(request, caller, "alias.set", f"{name}@{alias}", detail)
    return move


def roll_back_alias(
    request: Request, caller: Caller, name: str, alias: str, *, reason: str = ""
) -> AliasMove:
    """Undo the latest move of ``alias`` as ``caller``, recorded in the alias history and
    the audit log: ``ctloop models rollback`` over HTTP."""
    _check_production(request, caller, alias)
    move = workspace_of(request).registry.rollback(name, alias, by=caller.name, reason=reason)
    detail = {"to_version": move.to_version, "reason": reason}
    audit_write(request, caller, "alias.rollback", f"{name}@{alias}", detail)
    return move


def version_card(workspace: Workspace, name: str, version: int) -> ModelCard:
    """The model card of ``name`` version ``version``."""
    from ctloop.registry._card import model_card

    return model_card(
        workspace.registry, workspace.metadata, workspace.artifacts, f"{name}@{version}"
    )


def _check_production(request: Request, caller: Caller, alias: str) -> None:
    if alias in request.app.state.production_aliases:
        auth: Authenticator = request.app.state.auth
        try:
            auth.require(caller, Role.ADMIN, f"moving the production alias {alias!r}")
        except PermissionDeniedError:
            audit_write(request, caller, "refused", request.url.path, status=403)
            raise


def _model_key(model: RegisteredModel) -> list[Any]:
    return [model.name]


def _version_key(version: ModelVersion) -> list[Any]:
    return [version.version]


def _move_key(move: AliasMove) -> list[Any]:
    return [move.id]
