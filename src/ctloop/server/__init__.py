"""The team server: a REST API (v1) over one workspace, with API keys, roles and an
audit log of every write.

>>> from ctloop.store.workspace import Workspace
>>> create_app(Workspace.in_memory(), auth=False).title
'ctloop'
"""

from __future__ import annotations

from ctloop.server._app import API_PREFIX, create_app
from ctloop.server._auth import Caller
from ctloop.server._errors import AuthenticationError, PermissionDeniedError, ServerError
from ctloop.server._registry import PRODUCTION_ALIASES
from ctloop.server._serve import check_bind, is_loopback, run_server

__all__ = [
    "API_PREFIX",
    "PRODUCTION_ALIASES",
    "AuthenticationError",
    "Caller",
    "PermissionDeniedError",
    "ServerError",
    "check_bind",
    "create_app",
    "is_loopback",
    "run_server",
]
