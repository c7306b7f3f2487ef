"""The pages of the registry: models, and one model with its versions, aliases, alias
history and model card, where an admin promotes a version or rolls an alias back with a
reason (the API's own operation: recorded in the history and the audit log)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import APIRouter, Form, Request

from ctloop.errors import CtloopError
from ctloop.server._deps import workspace_of
from ctloop.server._errors import BadRequestError
from ctloop.server._registry import move_alias, roll_back_alias, version_card
from ctloop.server._ui._render import guarded, page
from ctloop.server._ui._session import check_write, page_caller
from ctloop.store._keys import Role

if TYPE_CHECKING:
    from fastapi.responses import Response

__all__ = ["model_pages"]


def model_pages() -> APIRouter:
    """The routes of the registry pages."""
    router = APIRouter(include_in_schema=False)

    @router.get("/models")
    @guarded
    def models(request: Request) -> Response:
        page_caller(request)
        found = sorted(workspace_of(request).registry.list_models(), key=lambda m: m.name)
        return page(request, "models.html", title="Models · ctloop", section="Models", models=found)

    @router.get("/models/{name}")
    @guarded
    def model(request: Request, name: str) -> Response:
        caller = page_caller(request)
        registry = workspace_of(request).registry
        found = registry.get_model(name)
        versions = sorted(registry.list_versions(found.name), key=lambda v: -v.version)
        shown = _shown_version(request, found.aliases, versions)
        card, card_error = _card(request, found.name, shown)
        return page(
            request,
            "model.html",
            title=f"{found.name} · ctloop",
            section="Models",
            model=found,
            aliases=sorted(found.aliases.items()),
            versions=versions,
            history=list(reversed(registry.alias_history(found.name))),
            admin=caller.role.allows(Role.ADMIN),
            notice=request.query_params.get("notice", ""),
            shown=shown,
            card=card,
            card_error=card_error,
        )

    @router.post("/models/{name}/aliases")
    @guarded
    def move(
        request: Request,
        name: str,
        alias: str = Form(..., max_length=200),
        version: int = Form(0),
        reason: str = Form("", max_length=2000),
        action: str = Form("promote"),
        csrf: str = Form(""),
    ) -> Response:
        from fastapi.responses import RedirectResponse

        caller = page_caller(request, Role.ADMIN)
        check_write(request, csrf)
        if not reason.strip():
            raise BadRequestError("say why in the reason field; it is kept in the history")
        if action == "rollback":
            moved = roll_back_alias(request, caller, name, alias, reason=reason)
            notice = f"{alias} rolled back to v{moved.to_version}"
        elif action == "promote":
            if version < 1:
                raise BadRequestError(f"version {version} is not a version number", "version")
            done = move_alias(request, caller, name, alias, version, reason=reason)
            notice = f"{alias} now points at v{version}" + ("" if done else " (it already did)")
        else:
            raise BadRequestError(f"unknown action {action!r}: promote or rollback", "action")
        return RedirectResponse(f"/models/{quote(name)}?notice={quote(notice)}", status_code=303)

    return router


def _shown_version(request: Request, aliases: dict[str, int], versions: list) -> int | None:
    raw = request.query_params.get("version")
    if raw:
        try:
            return int(raw)
        except ValueError:
            raise BadRequestError(f"version {raw!r} is not a number", field="version") from None
    if "champion" in aliases:
        return aliases["champion"]
    return versions[0].version if versions else None


def _card(request: Request, name: str, version: int | None) -> tuple[object, str]:
    """The model card's content, or why there is none (a version without its artifact)."""
    from ctloop.registry._card_render import html_body

    if version is None:
        return None, ""
    try:
        return html_body(version_card(workspace_of(request), name, version)), ""
    except CtloopError as exc:
        return None, f"no model card for v{version}: {exc}"
