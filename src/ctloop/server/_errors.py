"""Errors of the team server and how every error becomes an answer.

Each family of :mod:`ctloop.errors` maps to one status code; the body is always
``{"error": sentence, "field": name or null}``. A client's mistake is a 4xx, never a
500: a 500 means a bug in the server, and its sentence names the exception.

>>> status_of(AuthenticationError("no key"))
401
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ctloop.errors import (
    AliasNotFoundError,
    ConfigError,
    CtloopError,
    IntegrityError,
    ModelNotFoundError,
    ModelReferenceError,
    ModelVersionNotFoundError,
    NotFoundError,
    RollbackError,
    StoreUnavailableError,
)
from ctloop.errors import ConflictError as LostRaceError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request, Response

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "PermissionDeniedError",
    "ServerError",
    "add_error_handlers",
    "status_of",
]

log = logging.getLogger("ctloop.server")


class ServerError(CtloopError):
    """A request the team server refuses; ``field`` names the part of it that is wrong."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class BadRequestError(ServerError):
    """A parameter or body value the server cannot use (a bad cursor, an unknown sort)."""


class AuthenticationError(ServerError):
    """No API key, or one that is unknown, expired or revoked (401)."""

    status = 401


class PermissionDeniedError(ServerError):
    """A key whose role is too low for the request (403)."""

    status = 403


class ConflictError(ServerError):
    """A request the object's state does not allow now (409): resuming a running run."""

    status = 409


#: (family, status), most specific first
_STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (ServerError, 0),  # its own status
    (ModelNotFoundError, 404),
    (ModelVersionNotFoundError, 404),
    (AliasNotFoundError, 404),
    (NotFoundError, 404),
    (ModelReferenceError, 400),
    (RollbackError, 409),
    (IntegrityError, 409),
    (LostRaceError, 409),  # a compare-and-set write that lost
    (StoreUnavailableError, 503),
    (ConfigError, 400),
    (CtloopError, 400),
    (ValueError, 400),
)


def status_of(exc: Exception) -> int:
    """The status code that answers ``exc``."""
    if isinstance(exc, ServerError):
        return exc.status
    for family, status in _STATUSES:
        if isinstance(exc, family):
            return status
    return 500


def add_error_handlers(app: FastAPI) -> None:
    """Answer ctloop errors, FastAPI's own (unknown route, wrong method, bad parameter)
    and anything unexpected with ``{"error", "field"}``."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    app.add_exception_handler(CtloopError, _ctloop_error)
    app.add_exception_handler(ValueError, _ctloop_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)


def answer(status: int, message: str, field: str | None = None) -> Response:
    """The JSON error answer; a 401 says which scheme to use."""
    from fastapi.responses import JSONResponse

    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


async def _ctloop_error(request: Request, exc: Exception) -> Response:
    status = status_of(exc)
    if status >= 500:
        return await _unexpected(request, exc)
    return answer(status, str(exc), getattr(exc, "field", None))


async def _http_error(request: Request, exc: Any) -> Response:
    if exc.status_code == 404:
        message = (
            f"there is no endpoint {request.url.path}; the API is listed at /api/v1/openapi.json"
        )
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    response = answer(exc.status_code, message)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _validation_error(request: Request, exc: Any) -> Response:
    first: dict[str, Any] = exc.errors()[0]
    where = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body")]
    field = ".".join(where) or None
    message = f"{field or 'the request'}: {first.get('msg', 'is not valid')}"
    if "input" in first and not isinstance(first["input"], dict | list):
        message += f" (got {first['input']!r})"
    return answer(422, message, field)


async def _unexpected(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StoreUnavailableError):
        return answer(503, str(exc))
    log.error("unexpected failure answering %s %s", request.method, request.url.path, exc_info=exc)
    return answer(500, f"the server failed: {type(exc).__name__}: {exc}")
