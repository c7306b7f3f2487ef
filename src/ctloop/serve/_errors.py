"""How every failure of the prediction server becomes an answer: Starlette exception
handlers, one per kind of failure, registered once on the app.

A client's mistake is a 4xx ``{"error": sentence, "field": name}``, never a 500; a
model that fails on valid input is a 500 naming it. A failure inside a prediction route
(one begun with :func:`ctloop.serve._answers.read_request`) is answered with its request
id and counted in the metrics like a success. Unknown endpoints and wrong methods
answer in the same form, with a sentence for the native and MLflow endpoints or for the
Open Inference Protocol ones under ``/v2``. A 401 carries ``WWW-Authenticate: Bearer``.

>>> add_error_handlers(app)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ctloop.errors import PredictionRequestError, SignatureError
from ctloop.serve._answers import Answer, answered, plain
from ctloop.serve._core import ModelFailedError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["add_error_handlers", "failure_response"]

log = logging.getLogger("ctloop.serve.app")


def add_error_handlers(app: FastAPI) -> None:
    """Answer every failure of ``app``'s routes, FastAPI's own included."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    for kind in (PredictionRequestError, SignatureError, ModelFailedError, ClientDisconnect):
        app.add_exception_handler(kind, _failed)
    app.add_exception_handler(HTTPException, _routing_error)
    app.add_exception_handler(RequestValidationError, _parameter_error)
    # A bug is a 500 that names it. Not an Exception handler: Starlette gives that one to
    # its outermost middleware, which answers and then re-raises, and uvicorn then drops
    # the connection; this middleware answers and keeps it.
    app.add_middleware(_AnswerBugs)


class _AnswerBugs:
    """Answers an exception no handler took with a 500 (``_failed``), once, if nothing
    of the response is sent yet."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:
                raise
            from starlette.requests import Request

            response = await _failed(Request(scope, receive), exc)
            await response(scope, receive, send)


def _document(exc: Exception) -> tuple[int, dict[str, Any]]:
    from starlette.requests import ClientDisconnect

    if isinstance(exc, ClientDisconnect):  # nobody is left to answer
        return 499, {"error": "the client closed the connection", "field": None}
    if isinstance(exc, PredictionRequestError):
        return exc.status, {"error": str(exc), "field": exc.field}
    if isinstance(exc, SignatureError):
        return 422, {"error": str(exc), "field": exc.field}
    if isinstance(exc, ModelFailedError):
        return 500, {"error": str(exc), "field": None}
    log.error("unexpected failure answering a request", exc_info=exc)
    return 500, {"error": f"the server failed: {type(exc).__name__}: {exc}", "field": None}


async def failure_response(request: Request, exc: Exception) -> Response:
    """The answer to ``exc``, raised while answering ``request``: a 4xx or 500 document,
    counted like a success when ``request`` is a prediction route's (as every handler
    registered by :func:`add_error_handlers` answers)."""
    return await _failed(request, exc)


async def _failed(request: Request, exc: Exception) -> Response:
    status, document = _document(exc)
    if getattr(request.state, "protocol", None) is None:  # not a prediction route
        response = plain(document, status)
    else:
        metrics = request.app.state.serving.metrics
        if not isinstance(exc, ModelFailedError):
            metrics.errors.labels("client" if status < 500 else "server", "").inc()
        response = answered(metrics, request, Answer(document), status)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _is_v2(path: str) -> bool:
    return path == "/v2" or path.startswith("/v2/")


async def _routing_error(request: Request, exc: Any) -> Response:
    method, path = request.method, request.url.path
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and _is_v2(path):
        message = (
            f"there is no endpoint {method} {path} on this server; see /docs for the "
            "Open Inference Protocol endpoints it answers"
        )
    elif exc.status_code == 404:
        message = (
            f"there is no endpoint {method} {path} on this server; it answers POST /predict, "
            "POST /invocations, POST /feedback and the /v2 endpoints (see /docs)"
        )
    elif exc.status_code == 405:
        allowed = {k.lower(): v for k, v in headers.items()}.get("allow", "another method")
        message = f"{path} does not answer {method}; send {allowed}"
    else:
        message = str(exc.detail)
    response = plain({"error": message, "field": None}, exc.status_code)
    response.headers.update(headers)
    return response


async def _parameter_error(request: Request, exc: Any) -> Response:
    problem = exc.errors()[0]
    names = [str(part) for part in problem.get("loc", ()) if part not in ("query", "path")]
    field = names[-1] if names else None
    message = f"the request's {field or 'input'} is invalid: {problem.get('msg', exc)}"
    return plain({"error": message, "field": field}, 422)
