"""MLflow's wire protocol as the server speaks it: its error shape and codes, the request
payload (a GET's query string or a write's JSON body) and its times in milliseconds.

Every route of the MLflow routers answers a failure as MLflow's own server does,
``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": …}`` with MLflow's status code,
so that its client raises the :class:`MlflowException` its callers expect.

>>> MlflowError.missing("run 'r1'").status
404
>>> to_ms(from_ms(1700000000123))
1700000000123
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from ctloop.errors import (
    CtloopError,
    IntegrityError,
    ModelReferenceError,
    NotFoundError,
    StoreUnavailableError,
)
from ctloop.server._errors import ServerError

__all__ = [
    "MlflowError",
    "MlflowRoute",
    "from_ms",
    "mlflow_answer",
    "mlflow_router",
    "payload",
    "to_ms",
    "unknown_router",
]

log = logging.getLogger("ctloop.server")

#: MLflow's status code of each error code the server answers with
STATUS_OF_CODE = {
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "BAD_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_CONFLICT": 409,
    "INTERNAL_ERROR": 500,
    "TEMPORARILY_UNAVAILABLE": 503,
}


class MlflowError(CtloopError):
    """A request refused with one of MLflow's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = STATUS_OF_CODE[code]

    @classmethod
    def invalid(cls, message: str) -> MlflowError:
        """``INVALID_PARAMETER_VALUE``: a field of the request is wrong."""
        return cls("INVALID_PARAMETER_VALUE", message)

    @classmethod
    def missing(cls, what: str) -> MlflowError:
        """``RESOURCE_DOES_NOT_EXIST``: ``what`` is not there."""
        return cls("RESOURCE_DOES_NOT_EXIST", f"{what} does not exist")

    @classmethod
    def exists(cls, what: str) -> MlflowError:
        """``RESOURCE_ALREADY_EXISTS``: ``what`` is there already."""
        return cls("RESOURCE_ALREADY_EXISTS", f"{what} already exists")


def mlflow_answer(code: str, message: str, status: int | None = None) -> Response:
    """MLflow's error body; a 401 says which scheme to use."""
    from fastapi.responses import JSONResponse

    status = STATUS_OF_CODE.get(code, 500) if status is None else status
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        {"error_code": code, "message": message}, status_code=status, headers=headers
    )


def answer_for(request: Request, exc: Exception) -> Response:
    """The MLflow error answer of any failure of a route."""
    if isinstance(exc, MlflowError):
        return mlflow_answer(exc.code, str(exc), exc.status)
    if isinstance(exc, ServerError):
        code = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}.get(exc.status, "BAD_REQUEST")
        code = "INVALID_PARAMETER_VALUE" if code == "BAD_REQUEST" else code
        return mlflow_answer(code, str(exc), exc.status)
    if isinstance(exc, NotFoundError):
        return mlflow_answer("RESOURCE_DOES_NOT_EXIST", str(exc))
    if isinstance(exc, RequestValidationError):
        first: dict[str, Any] = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
        return mlflow_answer("INVALID_PARAMETER_VALUE", f"{where}: {first.get('msg')}")
    if isinstance(exc, StoreUnavailableError):
        return mlflow_answer("TEMPORARILY_UNAVAILABLE", str(exc))
    if isinstance(exc, IntegrityError):
        return mlflow_answer("RESOURCE_CONFLICT", str(exc))
    if isinstance(exc, ModelReferenceError | CtloopError | ValueError):
        return mlflow_answer("INVALID_PARAMETER_VALUE", str(exc))
    log.error("unexpected failure answering %s %s", request.method, request.url.path, exc_info=exc)
    return mlflow_answer("INTERNAL_ERROR", f"the server failed: {type(exc).__name__}: {exc}")


class MlflowRoute(APIRoute):
    """A route whose every failure (the key check included) is MLflow's error shape.

    A plain (not ``async``) endpoint's dict is rendered to JSON by orjson in the worker
    thread that ran it, not validated against its return annotation in a second trip
    to a thread: MLflow's answers are not in the OpenAPI document, and a client logging
    metric by metric waits for every trip."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        from fastapi.datastructures import DefaultPlaceholder

        plain = not inspect.iscoroutinefunction(endpoint)
        if plain and isinstance(options.get("response_model"), DefaultPlaceholder):
            endpoint, options["response_model"] = _rendered(endpoint), None
        super().__init__(path, endpoint, **options)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # every failure becomes MLflow's answer
                return answer_for(request, exc)

        return route


def _rendered(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint``, answering its dict as a JSON response (non-finite numbers as
    ``null``, as FastAPI renders them)."""

    @functools.wraps(endpoint)
    def rendered(*args: Any, **kwargs: Any) -> Any:
        answer = endpoint(*args, **kwargs)
        if isinstance(answer, dict):
            return Response(orjson.dumps(answer), media_type="application/json")
        return answer

    return rendered


def mlflow_router() -> tuple[APIRouter, Any, Any, Any]:
    """A router of MLflow's routes (MLflow's error shape, not in the OpenAPI document)
    and the dependencies its routes take: a viewer's key, an editor's key, the request's
    fields."""
    from fastapi import Depends

    from ctloop.server._deps import needs
    from ctloop.store._keys import Role

    router = APIRouter(route_class=MlflowRoute, include_in_schema=False)
    viewer, editor = Depends(needs(Role.VIEWER)), Depends(needs(Role.EDITOR))
    return router, viewer, editor, Depends(payload)


async def payload(request: Request) -> dict[str, Any]:
    """The request's fields: a GET's (or DELETE's) query string, a write's JSON body.
    A repeated query key becomes a list."""
    fields: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        fields[key] = values if len(values) > 1 or key in _LISTS else values[0]
    if request.method in ("POST", "PATCH", "DELETE", "PUT"):
        body = await request.body()
        if body.strip():
            import json

            try:
                data = json.loads(body)
            except ValueError as exc:
                raise MlflowError("BAD_REQUEST", f"the body is not JSON: {exc}") from exc
            if not isinstance(data, dict):
                raise MlflowError.invalid("the body must be a JSON object")
            fields.update(data)
    return fields


#: query keys that are lists even when given once
_LISTS = frozenset({"experiment_ids", "order_by", "run_ids", "stages"})


def text(data: dict[str, Any], key: str, *, required: bool = True, default: str = "") -> str:
    """The string field ``key`` of a request."""
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise MlflowError.invalid(f"missing value for required parameter {key!r}")
        return default
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise MlflowError.invalid(f"parameter {key!r} must be a string; got {value!r}")
    return str(value)


def integer(data: dict[str, Any], key: str, default: int | None = None) -> int | None:
    """The integer field ``key`` of a request (MLflow sends int64 as strings too)."""
    value = data.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MlflowError.invalid(f"parameter {key!r} must be an integer; got {value!r}") from None


def number(value: Any, key: str) -> float:
    """A metric value: a JSON number or MLflow's ``"NaN"``/``"Infinity"`` strings."""
    if isinstance(value, bool):
        raise MlflowError.invalid(f"metric {key!r} must be a number; got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise MlflowError.invalid(f"metric {key!r} must be a number; got {value!r}") from None


def json_number(value: float) -> float | str:
    """A float as MLflow's JSON writes it: ``NaN`` and infinities as strings."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def from_ms(ms: int) -> datetime:
    """A time in milliseconds since the epoch as a UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_ms(when: datetime | None) -> int | None:
    """A datetime as milliseconds since the epoch."""
    return None if when is None else round(when.timestamp() * 1000)


def unknown_router() -> APIRouter:
    """MLflow's ``ENDPOINT_NOT_FOUND`` for every other MLflow path, so that the client
    falls back or says which call this server does not offer."""
    router = APIRouter(route_class=MlflowRoute, include_in_schema=False)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]

    @router.api_route("/api/{version}/mlflow/{rest:path}", methods=methods)
    @router.api_route("/ajax-api/{version}/mlflow/{rest:path}", methods=methods)
    @router.api_route("/api/{version}/mlflow-artifacts/{rest:path}", methods=methods)
    def unknown(request: Request, version: str, rest: str) -> Response:
        return mlflow_answer(
            "ENDPOINT_NOT_FOUND",
            f"this server does not offer MLflow's {request.method} {request.url.path}",
        )

    return router
