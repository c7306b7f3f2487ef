"""Keys and the audit log (admin only): create, list and revoke API keys; read who
wrote what.

A created key is in the answer once and nowhere else: not in the audit log, not in a
log line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from ctloop.server._auth import Caller
from ctloop.server._deps import audit_write, needs, render, workspace_of
from ctloop.server._errors import BadRequestError
from ctloop.server._paging import MAX_LIMIT, decode_cursor, encode_cursor
from ctloop.store._keys import Role

__all__ = ["admin_router"]


def admin_router() -> APIRouter:
    """The routes of keys and the audit log."""

    router = APIRouter(tags=["admin"])
    admin = Depends(needs(Role.ADMIN))

    @router.get("/keys", summary="Every API key, without the keys themselves")
    def list_keys(request: Request, _: Caller = admin) -> dict[str, Any]:
        return {"items": render(workspace_of(request).keys.list()), "next_cursor": None}

    @router.post("/keys", status_code=201, summary="Create an API key (shown once)")
    def create_key(
        request: Request,
        name: Annotated[str, Body(embed=True, min_length=1, max_length=200)],
        role: Annotated[Role, Body(embed=True)],
        expires_at: Annotated[datetime | None, Body(embed=True)] = None,
        caller: Caller = admin,
    ) -> dict[str, Any]:
        if expires_at is not None and expires_at.tzinfo is None:
            raise BadRequestError(
                f"expires_at {expires_at.isoformat()} has no time zone; add one, such as Z",
                field="expires_at",
            )
        created = workspace_of(request).keys.create(
            name, role, created_by=caller.name, expires_at=expires_at
        )
        detail = {"id": created.record.id, "name": name, "role": str(role)}
        audit_write(request, caller, "key.create", f"key {created.record.id}", detail)
        return {**render(created.record), "key": created.secret}

    @router.delete("/keys/{key_id}", summary="Revoke an API key")
    def revoke_key(request: Request, key_id: str, caller: Caller = admin) -> dict[str, Any]:
        record = workspace_of(request).keys.revoke(key_id)
        request.app.state.auth.forget(record.id)
        audit_write(request, caller, "key.revoke", f"key {record.id}", {"name": record.name})
        return render(record)

    @router.get("/audit", summary="The audit log, newest first")
    def audit(
        request: Request,
        action: str | None = None,
        actor: str | None = None,
        cursor: str | None = None,
        limit: int = Query(100, ge=1, le=MAX_LIMIT),
        _: Caller = admin,
    ) -> dict[str, Any]:
        before = None if cursor is None else _entry_id(cursor)
        log = workspace_of(request).audit
        found = log.list(limit=limit + 1, before=before, action=action, actor=actor)
        shown = found[:limit]
        more = len(found) > limit
        return {
            "items": render(shown),
            "next_cursor": encode_cursor([shown[-1].id]) if more else None,
        }

    return router


def _entry_id(cursor: str) -> int:
    key = decode_cursor(cursor)
    if not isinstance(key[0], int):
        raise BadRequestError(
            "the cursor is not one of the audit log; pass the next_cursor of its previous page",
            field="cursor",
        )
    return key[0]
