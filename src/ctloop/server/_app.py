"""The team server's FastAPI application: REST API v1 over one workspace.

>>> from ctloop.store.workspace import Workspace
>>> app = create_app(Workspace.in_memory(), auth=False)
>>> app.openapi_url
'/api/v1/openapi.json'
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ctloop.server._auth import Authenticator
from ctloop.server._registry import PRODUCTION_ALIASES

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ctloop.server._mlflow._direct import DirectRoutesApp
    from ctloop.store.workspace import Workspace

__all__ = ["API_PREFIX", "create_app"]

#: where every route of version 1 of the API lives
API_PREFIX = "/api/v1"


def create_app(
    workspace: Workspace,
    *,
    auth: bool = True,
    production_aliases: Iterable[str] = PRODUCTION_ALIASES,
    project_root: Path | None = None,
) -> DirectRoutesApp:
    """The API over ``workspace``. With ``auth`` every route needs an API key of the
    workspace (``Authorization: Bearer ctl_…``); without it anyone may do anything (a
    laptop's loopback server only). Moving an alias in ``production_aliases`` needs an
    admin key. ``project_root`` is the folder whose ``ctloop.yaml`` declares the
    pipelines and triggers (default: the working directory)."""
    from ctloop._version import __version__
    from ctloop.server._errors import add_error_handlers
    from ctloop.server._mlflow._direct import DirectRoutesApp

    app = DirectRoutesApp(
        title="ctloop",
        version=__version__,
        summary="The REST API of a ctloop workspace: runs, artifacts, registry, operations.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.workspace = workspace
    app.state.auth = Authenticator(workspace.keys, enabled=auth)
    app.state.production_aliases = frozenset(production_aliases)
    app.state.project_root = project_root
    add_error_handlers(app)
    _include_routers(app)
    from ctloop.server._ui import mount_ui

    mount_ui(app)
    return app


def _include_routers(app: FastAPI) -> None:
    from ctloop.server._admin import admin_router
    from ctloop.server._approvals import approvals_router
    from ctloop.server._artifacts import artifacts_router
    from ctloop.server._mlflow import include_mlflow
    from ctloop.server._operations import operations_router
    from ctloop.server._ops_api import ops_router
    from ctloop.server._registry import registry_router
    from ctloop.server._runs import runs_router
    from ctloop.server._workspace_api import workspace_router

    # MLflow's routes first: a request is matched against the routes in order, and a
    # client logging metric by metric sends thousands of requests to them
    include_mlflow(app)
    for router in (
        runs_router(),
        artifacts_router(),
        registry_router(),
        operations_router(),
        ops_router(),
        admin_router(),
        approvals_router(),
        workspace_router(),
    ):
        app.include_router(router, prefix=API_PREFIX)
