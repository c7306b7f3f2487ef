"""The web UI of ``ctloop server``: pages drawn on the server with the house page kit
(``ctloop.pages``), reading what the REST API v1 reads through the same functions, with
one small script of our own for the metric charts. Sign in with an API key; it is kept
in an ``HttpOnly``, ``SameSite=Strict`` cookie, and every form that writes carries a
CSRF token.

>>> from ctloop.server import create_app
>>> from ctloop.store.workspace import Workspace
>>> app = create_app(Workspace.in_memory(), auth=False)
>>> app.url_path_for("runs"), app.url_path_for("login_form")
('/runs', '/login')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

__all__ = ["mount_ui"]


def mount_ui(app: FastAPI) -> None:
    """Add the pages, the login form and the static files to ``app``."""
    from ctloop.server._ui._artifact_pages import artifact_pages
    from ctloop.server._ui._lineage_pages import lineage_pages
    from ctloop.server._ui._login import login_pages
    from ctloop.server._ui._model_pages import model_pages
    from ctloop.server._ui._run_pages import run_pages

    routers = [login_pages(), run_pages(), model_pages(), lineage_pages(), artifact_pages()]
    routers += _operations_pages()
    for router in routers:
        app.include_router(router)


def _operations_pages() -> list[APIRouter]:
    """The operations pages (deployments, monitoring, triggers, alerts, data, keys),
    where the module that draws them is installed."""
    import importlib
    import importlib.util

    name = f"{__name__}._ops_pages"
    if importlib.util.find_spec(name) is None:
        return []
    module = importlib.import_module(name)
    pages = getattr(module, "ops_pages", None)
    return [pages()] if callable(pages) else []
