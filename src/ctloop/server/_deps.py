"""What routes take from each request: the workspace, the caller (with the role the
route needs) and the audit log entry of a write.

>>> needs(Role.ADMIN).__name__
'needs_admin'
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ctloop.server._auth import Authenticator, Caller
from ctloop.server._errors import ServerError
from ctloop.store._audit import AuditDraft
from ctloop.store._keys import Role

if TYPE_CHECKING:
    from ctloop.store._sql import SqlMetadataStore
    from ctloop.store.records import MetricRecord, ParamRecord, TagRecord
    from ctloop.store.workspace import Workspace

__all__ = [
    "KEY_COOKIE",
    "MAX_NUMBER",
    "Number",
    "audit_draft",
    "audit_write",
    "log_metrics_now",
    "log_tracking_audited",
    "needs",
    "render",
    "workspace_of",
]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: the largest id or version number a store holds (a 32-bit column on PostgreSQL); a
#: larger one in a path, or one below 1, is a 422 naming it rather than a number the
#: database cannot bind
MAX_NUMBER = 2**31 - 1
#: a model version or record id in a path: 1 or more
Number = Annotated[int, Path(ge=1, le=MAX_NUMBER, description="a whole number from 1")]
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


def needs(role: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency that finds the caller and refuses it unless its role allows
    ``role``; a refused write is in the audit log too."""

    async def dependency(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]
    ) -> Caller:
        # a key found a moment ago is checked here, on the event loop; one that needs a
        # store call (unknown, refused and audited, its last use to write) in a thread
        auth: Authenticator = request.app.state.auth
        caller = auth.cached_caller(_credentials(request))
        if caller is None or not caller.role.allows(role):
            from starlette.concurrency import run_in_threadpool

            return await run_in_threadpool(_check_caller, request, role)
        request.state.caller = caller
        return caller

    dependency.__name__ = f"needs_{role}"
    return dependency


def _credentials(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if not header and request.method in _READS and request.cookies.get(KEY_COOKIE):
        return f"Bearer {request.cookies[KEY_COOKIE]}"
    return header


def _check_caller(request: Request, role: Role) -> Caller:
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


def audit_draft(
    request: Request,
    caller: Caller,
    action: str,
    obj: str,
    detail: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> AuditDraft:
    """The audit log entry of a write: who, what, on what, from where, how it ended."""
    client = request.client
    return AuditDraft(
        actor=caller.name,
        action=action,
        object=obj,
        key_id=caller.key_id,
        detail={"method": request.method, **(detail or {})},
        remote="" if client is None else f"{client.host}",
        status=status,
    )


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
    workspace_of(request).audit.append(
        audit_draft(request, caller, action, obj, detail, status=status)
    )


def log_tracking_audited(
    workspace: Workspace,
    draft: AuditDraft,
    *,
    params: Sequence[ParamRecord] = (),
    metrics: Sequence[MetricRecord] = (),
    tags: Sequence[TagRecord] = (),
) -> None:
    """Write tracking data and its audit entry: in one transaction where both live in
    one SQL database (a per-call client then costs one commit per request), else one
    after the other."""
    store = _one_sql_database(workspace)
    if store is not None:
        store.log_batch(params=params, metrics=metrics, tags=tags, audit=draft)
        return
    workspace.metadata.log_batch(params=params, metrics=metrics, tags=tags)
    workspace.audit.append(draft)


def log_metrics_now(
    workspace: Workspace, draft: AuditDraft, metrics: Sequence[MetricRecord]
) -> bool:
    """Write metric points and their audit entry in one transaction, if the workspace's
    store can do it at once without waiting (a SQLite file whose write lock is free):
    cheap enough for the event loop. ``False`` (nothing written) otherwise: then
    :func:`log_tracking_audited` does it, in a thread."""
    store = _one_sql_database(workspace)
    return store is not None and store.log_metrics_now(metrics, draft)


def _one_sql_database(workspace: Workspace) -> SqlMetadataStore | None:
    """The metadata store, when the audit log lives in the same SQL database (not an
    in-memory one), so that a write and its entry can commit together."""
    from ctloop.store._audit import SqlAuditLog
    from ctloop.store._sql import SqlMetadataStore
    from ctloop.store._sql_engine import is_in_memory

    store, audit = workspace.metadata, workspace.audit
    if (
        isinstance(store, SqlMetadataStore)
        and isinstance(audit, SqlAuditLog)
        and store.url == audit.url
        and not is_in_memory(store.url)
    ):
        return store
    return None


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind))


def render(record: Any) -> Any:
    """A record (a dataclass, a list or dict of them) as JSON-ready values; times ISO 8601.

    >>> from ctloop.store.records import ParamRecord
    >>> render(ParamRecord("r1", "lr", "0.1"))
    {'run_id': 'r1', 'key': 'lr', 'value': '0.1', 'execution_id': None}
    """
    if record is None or isinstance(record, str | int):  # most values: leaves first
        return record
    if is_dataclass(record) and not isinstance(record, type):
        # field by field, not ``asdict``: that deep-copies every value first, which made
        # rendering a page of 100 runs cost more than reading it
        return {name: render(getattr(record, name)) for name in _field_names(type(record))}
    if isinstance(record, dict):
        return {str(k): render(v) for k, v in record.items()}
    if isinstance(record, list | tuple):
        return [render(v) for v in record]
    if isinstance(record, datetime):
        return record.isoformat()
    if isinstance(record, float) and not math.isfinite(record):
        return str(record).replace("inf", "Infinity").replace("nan", "NaN")
    return record
