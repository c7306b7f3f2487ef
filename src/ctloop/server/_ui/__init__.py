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
    from fastapi import FastAPI

__all__ = ["mount_ui"]


def mount_ui(app: FastAPI) -> None:
    """Add the pages, the login form and the static files to ``app``."""
    from ctloop.server._ui._login import login_pages
    from ctloop.server._ui._model_pages import model_pages
    from ctloop.server._ui._run_pages import run_pages

    for router in (login_pages(), run_pages(), model_pages()):
        app.include_router(router)
