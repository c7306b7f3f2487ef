"""Who is looking at a page: the API key in an ``HttpOnly``, ``SameSite=Strict`` cookie,
checked by the same :class:`~ctloop.server._auth.Authenticator` as the API; and the
token that every form which writes must carry (CSRF).

The token is an HMAC of the cookie's key under a secret of the running server, so a page
of another site can neither read it nor guess it; a write whose ``Origin`` header names
another host is refused as well.

>>> csrf_token(b"s" * 32, "ctl_abc") == csrf_token(b"s" * 32, "ctl_abc")
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ctloop.server._auth import Authenticator, Caller
from ctloop.server._deps import KEY_COOKIE, audit_write
from ctloop.server._errors import PermissionDeniedError, ServerError
from ctloop.store._keys import Role

if TYPE_CHECKING:
    from fastapi import Request

__all__ = ["COOKIE", "LoginNeeded", "csrf_token", "page_caller", "safe_next"]

#: the cookie that holds the API key
COOKIE = KEY_COOKIE


class LoginNeeded(ServerError):
    """No key, or one the server refuses: the page sends the browser to the login form."""

    status = 401


def server_secret(request: Request) -> bytes:
    """The secret of this server process the CSRF tokens are made with."""
    state = request.app.state
    if not hasattr(state, "ui_secret"):
        state.ui_secret = secrets.token_bytes(32)
    secret: bytes = state.ui_secret
    return secret


def csrf_token(secret: bytes, key: str) -> str:
    """The token the forms of a page carry for the cookie's ``key``."""
    return hmac.new(secret, f"csrf:{key}".encode(), hashlib.sha256).hexdigest()


def page_caller(request: Request, role: Role = Role.VIEWER) -> Caller:
    """The caller of a page, who must hold ``role``: the key of the cookie (anyone on a
    server without auth). No key or a refused one is :class:`LoginNeeded`."""
    auth: Authenticator = request.app.state.auth
    key = request.cookies.get(COOKIE, "")
    if auth.enabled and not key:
        raise LoginNeeded("sign in with an API key to see this page")
    try:
        caller = auth.caller(f"Bearer {key}")
    except ServerError as exc:
        if exc.status == 401:
            raise LoginNeeded(str(exc)) from None
        raise
    request.state.caller = caller
    try:
        auth.require(caller, role, f"{request.method} {request.url.path}")
    except ServerError as exc:
        if request.method != "GET":
            audit_write(request, caller, "refused", request.url.path, status=exc.status)
        raise
    return caller


def page_token(request: Request) -> str:
    """The CSRF token of the page's caller."""
    return csrf_token(server_secret(request), request.cookies.get(COOKIE, ""))


def check_write(request: Request, token: str, *, login: bool = False) -> None:
    """Refuse (403) a form post from another site, or (but for the login form, which has
    no key to make a token with yet) without this caller's token."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        raise PermissionDeniedError(
            f"a form of {origin} cannot write to this server; use the page of this server"
        )
    if login:
        return
    if not hmac.compare_digest(token or "", page_token(request)):
        raise PermissionDeniedError(
            "the form's security token is missing or out of date; reload the page and "
            "send the form again"
        )


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this server only (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/runs"
    return target
