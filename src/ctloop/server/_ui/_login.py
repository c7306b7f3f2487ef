"""Signing in and out, ``/`` (the runs), and the static files of the pages."""

from __future__ import annotations

import re
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

#: the kinds of file under /ui/static/ (the kit's stylesheet, the pages' scripts and
#: styles, vendored libraries and their licences), by how their names end
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
_NAME = re.compile(r"^(vendor/)?[\w][\w.-]*$")
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

    @router.get("/ui/static/{name:path}")
    def static(name: str) -> Response:
        from fastapi.responses import Response

        body = _static_body(name)
        headers = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
        return Response(body, media_type=_TYPES[name[name.rindex(".") :]], headers=headers)

    return router


def _static_body(name: str) -> bytes:
    """The bytes of the static file ``name``, read from the package (never from a path
    the request made up: the name must be a plain file name of the static folder)."""
    from ctloop.errors import NotFoundError

    suffix = name[name.rfind(".") :] if "." in name else ""
    if not _NAME.match(name) or ".." in name or suffix not in _TYPES:
        raise NotFoundError(f"there is no static file {name!r}")
    if name == "ctloop.css":
        return static_file(name)
    found = resources.files(__package__).joinpath("static", *name.split("/"))
    if not found.is_file():
        raise NotFoundError(f"there is no static file {name!r}")
    return found.read_bytes()
