"""What routes take from each request: the workspace, the caller (with the role the
route needs) and the audit log entry of a write.

>>> needs(Role.ADMIN).__name__
'needs_admin'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ctloop.server._auth import Authenticator, Caller
from ctloop.server._errors import ServerError
from ctloop.store.audit import AuditDraft
from ctloop.store.keys import Role

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["KEY_COOKIE", "audit_write", "needs", "render", "workspace_of"]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: the cookie the web UI keeps the key in (``HttpOnly``, ``SameSite=Strict``); a read
#: may come with it instead of the header, so the pages' scripts can fetch the API
#: without ever seeing the key; a write needs the header (a cookie alone is not CSRF-safe)
KEY_COOKIE = "ctloop_key"
#: the scheme the OpenAPI document names; the header is read by the dependency itself
_BEARER = HTTPBearer(auto_error=False, description="a ctloop API key: ctl_…")


def workspace_of(request: Request) -> Workspace:
    """The workspace the server was created on."""
    workspace: Workspace = request.app.state.workspace
    return workspace


def needs(role: Role) -> Callable[..., Caller]:
    """A dependency that finds the caller and refuses it unless its role allows
    ``role``; a refused write is in the audit log too."""

    def dependency(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
    ) -> Caller:
        auth: Authenticator = request.app.state.auth
        caller = auth.caller(_credentials(request))
        request.state.caller = caller
        try:
            auth.require(caller, role, f"{request.method} {request.url.path}")
        except ServerError as exc:
            if request.method not in _READS:
                audit_write(request, caller, "refused", request.url.path, status=exc.status)
            raise
        return caller

    dependency.__name__ = f"needs_{role}"
    return dependency


def _credentials(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if not header and request.method in _READS and request.cookies.get(KEY_COOKIE):
        return f"Bearer {request.cookies[KEY_COOKIE]}"
    return header


def audit_write(
    request: Request,
    caller: Caller,
    action: str,
    obj: str,
    detail: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> None:
    """Append a write to the audit log: who, what, on what, from where, how it ended."""
    client = request.client
    workspace_of(request).audit.append(
        AuditDraft(
            actor=caller.name,
            action=action,
            object=obj,
            key_id=caller.key_id,
            detail={"method": request.method, **(detail or {})},
            remote="" if client is None else f"{client.host}",
            status=status,
        )
    )


def render(record: Any) -> Any:
    """A record (a dataclass, a list or dict of them) as JSON-ready values; times ISO 8601.

    >>> from ctloop.store.records import ParamRecord
    >>> render(ParamRecord("r1", "lr", "0.1"))
    {'run_id': 'r1', 'key': 'lr', 'value': '0.1', 'execution_id': None}
    """
    if is_dataclass(record) and not isinstance(record, type):
        return render(asdict(record))
    if isinstance(record, dict):
        return {str(k): render(v) for k, v in record.items()}
    if isinstance(record, list | tuple):
        return [render(v) for v in record]
    if isinstance(record, datetime):
        return record.isoformat()
    if isinstance(record, float) and not math.isfinite(record):
        return str(record).replace("inf", "Infinity").replace("nan", "NaN")
    return record
