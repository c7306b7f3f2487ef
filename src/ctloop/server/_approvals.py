"""Approvals of promotions into the environment this server holds (``ctloop env``):
list them, read one, approve or reject a requested one. Deciding needs an admin; the
decision is recorded with the key's name and in the audit log.

    GET  /api/v1/approvals?environment=prod&state=requested
    POST /api/v1/approvals/3/approve   {"reason": "reviewed ci-report"}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request

from ctloop.errors import ApprovalError
from ctloop.server._auth import Caller
from ctloop.server._deps import Number, audit_write, needs, render, workspace_of
from ctloop.server._errors import ConflictError
from ctloop.server._paging import MAX_LIMIT, page_of
from ctloop.store._approvals import APPROVAL_STATES, ApprovalRecord
from ctloop.store._keys import Role

__all__ = ["approvals_router"]


def approvals_router() -> APIRouter:
    """The routes of approvals."""
    router = APIRouter(prefix="/approvals", tags=["approvals"])
    viewer, admin = Depends(needs(Role.VIEWER)), Depends(needs(Role.ADMIN))

    @router.get("", dependencies=[viewer], summary="List approvals, newest first")
    def list_approvals(
        request: Request,
        model: str | None = None,
        environment: str | None = None,
        state: str | None = Query(None, description=f"one of {', '.join(APPROVAL_STATES)}"),
        cursor: str | None = None,
        limit: int = Query(100, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        found = workspace_of(request).approvals.list(
            model=model, environment=environment, state=state, limit=10_000
        )
        return page_of(found, key=_newest_first, cursor=cursor, limit=limit, render=render)

    @router.get("/{approval_id}", dependencies=[viewer], summary="One approval")
    def get_approval(request: Request, approval_id: Number) -> dict[str, Any]:
        return render(workspace_of(request).approvals.get(approval_id))

    for verb, state in (("approve", "approved"), ("reject", "rejected")):
        summary = f"{verb.capitalize()} a requested promotion (admin)"
        router.post(f"/{{approval_id}}/{verb}", summary=summary, name=verb)(_decision(state, admin))

    return router


def _decision(state: str, admin: Any) -> Callable[..., dict[str, Any]]:
    """The route that decides a request as ``state`` (``approved`` or ``rejected``)."""

    def decide(
        request: Request,
        approval_id: Number,
        reason: str = Body(..., embed=True, min_length=1, max_length=2000),
        caller: Caller = admin,
    ) -> dict[str, Any]:
        return _decide(request, caller, approval_id, state, reason)

    return decide


def _decide(
    request: Request, caller: Caller, approval_id: int, state: str, reason: str
) -> dict[str, Any]:
    approvals = workspace_of(request).approvals
    try:
        record = approvals.decide(approval_id, state, by=caller.name, reason=reason)
    except ApprovalError as exc:
        raise ConflictError(str(exc)) from exc
    action = "approval.approve" if state == "approved" else "approval.reject"
    detail = {"model": record.model, "version": record.version, "reason": reason}
    audit_write(request, caller, action, f"approval #{record.id} ({record.environment})", detail)
    result: dict[str, Any] = render(record)
    return result


def _newest_first(record: ApprovalRecord) -> list[Any]:
    return [-record.id]
