"""Deployments, alerts, triggers and their firings: read-only lists, paged.

>>> operations_router().routes[0].path
'/deployments'
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ctloop.server._deps import needs, render, workspace_of
from ctloop.server._paging import MAX_LIMIT, page_of
from ctloop.store._keys import Role
from ctloop.store.statuses import FiringStatus

__all__ = ["operations_router"]


def operations_router() -> APIRouter:
    """The routes of deployments, alerts and triggers."""

    router = APIRouter(tags=["operations"], dependencies=[Depends(needs(Role.VIEWER))])
    limit_query = Query(100, ge=1, le=MAX_LIMIT)

    @router.get("/deployments", summary="Each deployment's latest state, by name")
    def deployments(
        request: Request, cursor: str | None = None, limit: int = limit_query
    ) -> dict[str, Any]:
        found = sorted(workspace_of(request).deployments.list(), key=lambda d: d.name)
        return page_of(found, key=lambda d: [d.name], cursor=cursor, limit=limit, render=render)

    @router.get("/deployments/{name}/history", summary="Every change of one deployment")
    def deployment_history(
        request: Request, name: str, cursor: str | None = None, limit: int = limit_query
    ) -> dict[str, Any]:
        found = workspace_of(request).deployments.history(name)
        return page_of(found, key=lambda d: [d.id], cursor=cursor, limit=limit, render=render)

    @router.get("/alerts", summary="Alerts, oldest first")
    def alerts(
        request: Request,
        subject: str | None = None,
        since: Annotated[datetime | None, Query(description="recorded after this time")] = None,
        cursor: str | None = None,
        limit: int = limit_query,
    ) -> dict[str, Any]:
        found = workspace_of(request).alerts.list(subject, since)
        return page_of(found, key=lambda a: [a.id], cursor=cursor, limit=limit, render=render)

    @router.get("/alerts/incidents", summary="Incidents: alerts grouped by model and kind")
    def incidents(
        request: Request,
        subject: str | None = None,
        status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
        cursor: str | None = None,
        limit: int = limit_query,
    ) -> dict[str, Any]:
        from ctloop.monitor._incidents import list_incidents

        found = list_incidents(workspace_of(request), subject)
        if status is not None:
            found = [i for i in found if i.status == status]
        return page_of(
            found,
            key=lambda i: [i.alert_ids[0]],
            cursor=cursor,
            limit=limit,
            render=lambda i: i.to_dict(),
        )

    @router.get("/triggers", summary="Each trigger's state, by name")
    def triggers(
        request: Request, cursor: str | None = None, limit: int = limit_query
    ) -> dict[str, Any]:
        found = workspace_of(request).triggers.list_states()
        return page_of(found, key=lambda t: [t.name], cursor=cursor, limit=limit, render=render)

    @router.get("/triggers/firings", summary="Firings, newest first")
    def firings(
        request: Request,
        trigger: str | None = None,
        status: FiringStatus | None = None,
        cursor: str | None = None,
        limit: int = limit_query,
    ) -> dict[str, Any]:
        statuses = None if status is None else [str(status)]
        found = workspace_of(request).triggers.list_firings(trigger=trigger, statuses=statuses)
        return page_of(found, key=lambda f: [-f.id], cursor=cursor, limit=limit, render=render)

    return router
