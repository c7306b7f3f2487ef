"""The workspace protocol: every store of the server's workspace, for
:meth:`Workspace.remote <ctloop.store.workspace.Workspace.remote>` clients.

``POST /api/v1/workspace/{store}/{method}`` with ``{"args": [...], "kwargs": {...}}``
(values in the codec of :mod:`ctloop.store._remote_codec`) calls that method of that
store and answers ``{"result": ...}``. One dispatcher serves every store: it knows the
role each method needs (:mod:`ctloop.store._remote_protocol`), refuses a lower one with a
403, and writes every write to the audit log (an ``audit.append`` is its own entry). A
store's error answers ``{"error": sentence, "type": class name, "field": null}`` with
the status the REST API uses, so the client raises the same class with the same message.

Blob bytes stream: ``PUT /api/v1/workspace/artifacts/blobs`` stores the request body
(read in chunks into a temporary file), ``GET /api/v1/workspace/artifacts/blobs/{digest}``
sends a blob as a file response.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request, Response

from ctloop.server._auth import Authenticator, Caller, caller_of
from ctloop.server._deps import audit_write, needs, workspace_of
from ctloop.server._errors import ServerError, status_of
from ctloop.store._keys import Role
from ctloop.store._remote_codec import CodecError, decode, encode
from ctloop.store._remote_protocol import (
    STORES,
    forwarded_methods,
    production_alias_of,
    role_needed,
)

if TYPE_CHECKING:
    from ctloop.store.artifact_store import ArtifactStore

__all__ = ["workspace_router"]

log = logging.getLogger("ctloop.server")
_CHUNK = 1 << 20


def workspace_router() -> APIRouter:
    """The routes of the workspace protocol."""
    router = APIRouter(
        prefix="/workspace", tags=["workspace"], dependencies=[Depends(needs(Role.VIEWER))]
    )

    @router.put("/artifacts/blobs", summary="Store a blob (the body is its bytes)")
    async def put_blob(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        caller = caller_of(request)
        try:
            _require(request, caller, Role.EDITOR, "storing a blob")
            path = await _receive(request)
            try:
                store = workspace_of(request).artifacts
                digest, size = await run_in_threadpool(store.put_file, path)
            finally:
                path.unlink(missing_ok=True)
        except Exception as exc:
            return _failure(request, exc)
        audit_write(request, caller, "artifacts.put_file", f"blob {digest}", {"size": size})
        return _answer({"digest": digest, "size": size})

    @router.get("/artifacts/blobs/{digest}", summary="Download a blob")
    def get_blob(request: Request, digest: str) -> Response:
        from fastapi.responses import FileResponse

        try:
            store: ArtifactStore = workspace_of(request).artifacts
            cache = Path(tempfile.gettempdir()) / "ctloop-server-blobs"
            path = store.local_path(digest, cache)
        except Exception as exc:
            return _failure(request, exc)
        return FileResponse(path, media_type="application/octet-stream")

    @router.post("/{store}/{method}", summary="Call a method of a store of the workspace")
    def call(request: Request, store: str, method: str, body: dict[str, Any]) -> Response:
        caller = caller_of(request)
        try:
            args, kwargs = _arguments(store, method, body)
            _authorize(request, caller, store, method, args, kwargs)
            result = _invoke(getattr(workspace_of(request), store), method, args, kwargs)
            payload = _answer({"result": encode(result)})
        except Exception as exc:
            return _failure(request, exc)
        if role_needed(store, method) != "viewer" and (store, method) != ("audit", "append"):
            audit_write(request, caller, f"{store}.{method}", store, _detail(args, kwargs))
        return payload

    return router


def _arguments(store: str, method: str, body: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    if store not in STORES:
        raise _NotFound(f"the workspace has no store {store!r}; stores: {', '.join(STORES)}")
    if method not in forwarded_methods(store):
        known = ", ".join(sorted(forwarded_methods(store)))
        raise _NotFound(f"the {store} store has no method {method!r}; methods: {known}")
    args, kwargs = decode(body.get("args", [])), decode(body.get("kwargs", {}))
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise CodecError("the body must be {'args': [...], 'kwargs': {...}}")
    return args, kwargs


def _invoke(target: Any, method: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if method == "store_url":  # the one call that is an attribute (EXTRAS)
        return target.url
    return getattr(target, method)(*args, **kwargs)


def _authorize(
    request: Request,
    caller: Caller,
    store: str,
    method: str,
    args: list[Any],
    kwargs: dict[str, Any],
) -> None:
    what = f"{store}.{method}"
    _require(request, caller, Role(role_needed(store, method)), what)
    alias = production_alias_of(method, args, kwargs) if store == "registry" else None
    if alias is not None and alias in request.app.state.production_aliases:
        _require(request, caller, Role.ADMIN, f"moving the production alias {alias!r}")


def _require(request: Request, caller: Caller, role: Role, what: str) -> None:
    auth: Authenticator = request.app.state.auth
    try:
        auth.require(caller, role, what)
    except ServerError as exc:
        if role is not Role.VIEWER:
            audit_write(request, caller, "refused", what, status=exc.status)
        raise


async def _receive(request: Request) -> Path:
    """The request body in a temporary file, written chunk by chunk."""
    fd, name = tempfile.mkstemp(prefix="ctloop-upload-")
    try:
        with os.fdopen(fd, "wb") as sink:
            async for chunk in request.stream():
                sink.write(chunk)
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _detail(args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a call: the leading plain arguments (a record by its
    id or type), and the names of the keyword arguments, never their values."""
    return {"args": [_named(a) for a in args[:2]], "kwargs": sorted(kwargs)}


def _named(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(getattr(value, "id", None) or type(value).__name__)


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def _failure(request: Request, exc: Exception) -> Response:
    from starlette.requests import ClientDisconnect

    if isinstance(exc, ClientDisconnect):  # nobody is left to answer; nothing was stored
        return _answer({"error": "the client went away mid-upload", "field": None}, 400)
    # an OverflowError: a number past 64 bits that the database could not bind (the
    # store raises the same error in process): the caller's fault, not the server's
    status = 400 if isinstance(exc, CodecError | TypeError | OverflowError) else status_of(exc)
    if status >= 500:
        log.error("unexpected failure answering %s", request.url.path, exc_info=exc)
    body = {"error": str(exc), "type": type(exc).__name__, "field": getattr(exc, "field", None)}
    response = _answer(body, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


class _NotFound(ServerError):
    status = 404
