"""Signing in and out, ``/`` (the runs), and the static files of the pages."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from fastapi import APIRouter, Form, Request

from ctloop.pages import static_file
from ctloop.server._auth import Authenticator
from ctloop.server._errors import ServerError
from ctloop.server._ui._render import guarded, page
from ctloop.server._ui._session import COOKIE, check_write, safe_next

if TYPE_CHECKING:
    from fastapi.responses import Response

__all__ = ["login_pages"]

#: the files under /ui/static/: the kit's stylesheet and the pages' script
_STATIC = {"ctloop.css": "text/css; charset=utf-8", "ui.js": "text/javascript; charset=utf-8"}
#: a week: signing in again after that is a small price for a key left in a browser
_COOKIE_AGE_S = 7 * 24 * 3600


def login_pages() -> APIRouter:
    """The routes of ``/``, the login form, signing out and the static files."""
    from fastapi.responses import RedirectResponse

    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home() -> Response:
        return RedirectResponse("/runs", status_code=307)

    @router.get("/login")
    @guarded
    def login_form(request: Request) -> Response:
        query = request.query_params
        return page(
            request,
            "login.html",
            title="Sign in · ctloop",
            section="",
            next=safe_next(query.get("next")),
            message=query.get("why", ""),
        )

    @router.post("/login")
    @guarded
    def login(request: Request, key: str = Form(""), next: str = Form("/runs")) -> Response:
        check_write(request, "", login=True)
        auth: Authenticator = request.app.state.auth
        try:
            auth.caller(f"Bearer {key.strip()}")
        except ServerError as exc:
            return page(
                request,
                "login.html",
                status=exc.status,
                title="Sign in · ctloop",
                section="",
                next=safe_next(next),
                message=str(exc),
            )
        answer = RedirectResponse(safe_next(next), status_code=303)
        answer.set_cookie(
            COOKIE,
            key.strip(),
            max_age=_COOKIE_AGE_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return answer

    @router.post("/logout")
    @guarded
    def logout(request: Request, csrf: str = Form("")) -> Response:
        check_write(request, csrf)
        answer = RedirectResponse("/login", status_code=303)
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return answer

    @router.get("/ui/static/{name}")
    def static(name: str) -> Response:
        from fastapi.responses import PlainTextResponse, Response

        if name not in _STATIC:
            return PlainTextResponse(f"no static file {name!r}", status_code=404)
        if name == "ctloop.css":
            body = static_file(name)
        else:
            body = resources.files(__package__).joinpath("static", name).read_bytes()
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(body, media_type=_STATIC[name], headers=headers)

    return router
