"""Pages as answers: a template of the kit with the caller, its CSRF token and number
formats; errors as pages (a sentence and the status of the API's own answer); a page that
needs a key sends the browser to the login form."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ctloop.errors import CtloopError
from ctloop.pages import Markup, render
from ctloop.server._errors import status_of
from ctloop.server._ui._session import LoginNeeded, page_token

if TYPE_CHECKING:
    from fastapi import Request
    from fastapi.responses import Response

__all__ = ["guarded", "number", "page", "param", "script_json", "seconds"]

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
}


def number(value: Any) -> str:
    """A metric value as the tables show it.

    >>> number(0.812345), number(None), number(12345.0), number("NaN"), number("-Infinity")
    ('0.8123', '', '1.234e+04', 'nan', '-inf')
    """
    if value is None:
        return ""
    if isinstance(value, str):  # the API's JSON spells NaN and the infinities as text
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def param(value: Any) -> str:
    """A parameter value as the tables show it: text as it is, anything else as JSON.

    >>> param("ridge"), param(2), param([1, 2]), param(None)
    ('ridge', '2', '[1, 2]', '')
    """
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def script_json(value: Any) -> Markup:
    """``value`` as JSON to put in a ``<script type="application/json">`` block: no
    character in it can close the block or open a comment.

    >>> text = script_json({"log": "</script><b>"})
    >>> "<" in text, json.loads(text)["log"]
    (False, '</script><b>')
    """
    text = json.dumps(value, default=str)
    return Markup(text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e"))


def seconds(value: float | None) -> str:
    """A duration: ``0.4 s``, ``12 s``, ``3 min 5 s``; empty while running.

    >>> seconds(0.42), seconds(185.0), seconds(None)
    ('0.42 s', '3 min 5 s', '')
    """
    if value is None:
        return ""
    if value < 60:
        return f"{value:.2g} s" if value < 10 else f"{value:.0f} s"
    return f"{int(value // 60)} min {int(value % 60)} s"


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> Response:
    """The template ``ctloop.server._ui/{template}`` as an HTML answer."""
    from fastapi.responses import HTMLResponse

    html = render(
        f"ctloop.server._ui/{template}",
        caller=getattr(request.state, "caller", None),
        csrf=page_token(request),
        number=number,
        param=param,
        seconds=seconds,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def guarded(handler: Callable[..., Response]) -> Callable[..., Response]:
    """A page handler whose errors are pages: a refused or missing key sends the browser
    to the login form; any other ctloop error is the API's status with its sentence."""

    @functools.wraps(handler)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return handler(request, *args, **kwargs)
        except LoginNeeded as exc:
            return _to_login(request, str(exc))
        except CtloopError as exc:
            status = status_of(exc)
            heading = "Not allowed" if status == 403 else "Not found" if status == 404 else "Error"
            return page(
                request,
                "error.html",
                status=status,
                title=f"{heading} · ctloop",
                section="",
                heading=heading,
                message=str(exc),
            )

    return wrapper


def _to_login(request: Request, message: str) -> Response:
    from fastapi.responses import RedirectResponse

    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/runs"
    return RedirectResponse(f"/login?next={quote(target)}&why={quote(message)}", status_code=303)
