"""MLflow's REST API over the workspace, so that MLflow's own client (3.x) works
unchanged against ``ctloop server``: tracking (experiments, runs, params, metrics,
tags), the ``mlflow-artifacts`` proxy, MLflow 3's logged models and the model registry.

Routes live under ``/api/2.0/mlflow``, ``/api/2.0/mlflow-artifacts`` and their
``/ajax-api/2.0/…`` twins; they are not in the OpenAPI document of API v1. A key is sent
as MLflow sends a token (``MLFLOW_TRACKING_TOKEN``): ``Authorization: Bearer ctl_…``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["include_mlflow"]


def include_mlflow(app: FastAPI) -> None:
    """Mount MLflow's routes on ``app``; on a
    :class:`~ctloop.server._mlflow._direct.DirectRoutesApp`, its logging routes are
    answered directly as well."""
    from ctloop.server._mlflow._artifacts import artifacts_router
    from ctloop.server._mlflow._direct import DirectRoutesApp, direct_log_routes
    from ctloop.server._mlflow._experiments import experiments_router
    from ctloop.server._mlflow._models import logged_models_router
    from ctloop.server._mlflow._protocol import unknown_router
    from ctloop.server._mlflow._registry import registry_router
    from ctloop.server._mlflow._tracking import tracking_router

    # tracking first: runs/log-metric and runs/log-batch are most of the requests
    routers = (tracking_router(), experiments_router(), logged_models_router(), registry_router())
    artifacts = artifacts_router()
    for root in ("/api/2.0", "/ajax-api/2.0"):
        for router in routers:
            app.include_router(router, prefix=f"{root}/mlflow")
        app.include_router(artifacts, prefix=f"{root}/mlflow-artifacts")
    app.include_router(unknown_router())
    if isinstance(app, DirectRoutesApp) and not app.user_middleware:
        app.direct_routes = direct_log_routes()
