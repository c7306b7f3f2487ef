"""The standalone online feature server (``ctloop features serve``): the latest feature
values of entity keys over HTTP, for clients that are not a model ``ctloop serve`` runs.

>>> app = create_feature_app(workspace, service="flights_v1")  # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=6566)  # doctest: +SKIP

Endpoints:

- ``POST /get-online-features``, Feast's feature server request and answer::

      {"feature_service": "flights_v1", "entities": {"origin": ["EWR", "JFK"]}}
      {"features": ["weather_hourly:temp"], "entities": {...}, "full_feature_names": false}
      -> {"metadata": {"feature_names": ["origin", "temp"]},
          "results": [{"values": ["EWR", "JFK"], "statuses": ["PRESENT", "PRESENT"],
                       "event_timestamps": ["1970-01-01T00:00:00Z", ...]}, ...]}

  one result per column, the entity columns first; a status is ``PRESENT``,
  ``NOT_FOUND`` (never materialized), ``OUTSIDE_MAX_AGE`` (older than the view's ttl)
  or ``NULL_VALUE``.
- ``POST /features``, rows in, rows out::

      {"service": "flights_v1", "rows": [{"origin": "EWR", "sched_dep_time": 700}]}
      -> {"features": ["temp", ...], "rows": [{"origin": "EWR", "sched_dep_time": 700, "temp": 2.0, ...}]}

- ``GET /health`` (reads the online store once; 503 when it cannot be reached) and
  ``GET /metrics`` (Prometheus).

Every read is one read of the online store for all the features asked for; the
definitions are rebuilt only when an apply changed them (one small query to see that).
A client's mistake is a 4xx ``{"error": sentence, "field": name}``. With a pinned
``service``, a request may leave the features out and may not ask for others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, FastAPI, Request, Response

from ctloop.errors import FeatureError, PredictionRequestError, StoreUnavailableError
from ctloop.store._keys import Role

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from ctloop.features._online import OnlineRead
    from ctloop.features._stored import Selection

__all__ = ["DEFAULT_PORT", "FeatureServerMetrics", "create_feature_app", "serve_features"]

DEFAULT_PORT = 6566
"""The port ``ctloop features serve`` listens on (Feast's)."""

_EPOCH = "1970-01-01T00:00:00Z"
_ENDPOINTS = ("/get-online-features", "/features", "/health", "/metrics")
_FEAST_KEYS = {"features", "feature_service", "entities", "full_feature_names"}
_NATIVE_KEYS = {"features", "service", "rows", "full_feature_names"}


class FeatureServerMetrics:
    """What ``/metrics`` shows: requests by endpoint and status, their latency, entity
    rows read and feature values by status (its own registry, so that several apps in
    one process do not share counters)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry: CollectorRegistry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "ctloop_feature_requests", "Requests answered, by endpoint and HTTP status.",
            ["endpoint", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "ctloop_feature_request_latency_seconds", "Time to answer a request, by endpoint.",
            ["endpoint"], registry=r,
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
        )  # fmt: skip
        self.entity_rows = Counter(
            "ctloop_feature_entity_rows", "Entity rows looked up.", registry=r
        )
        self.values = Counter(
            "ctloop_feature_values",
            "Feature values answered, by status (PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE, NULL_VALUE).",
            ["status"], registry=r,
        )  # fmt: skip

    def count_read(self, read: OnlineRead, rows: int) -> None:
        """Count one read's entity rows and its values by status."""
        self.entity_rows.inc(rows)
        totals: dict[str, int] = {}
        for statuses in read.statuses.values():
            for status in statuses:
                totals[status] = totals.get(status, 0) + 1
        for status, count in totals.items():
            self.values.labels(status).inc(count)

    def render(self) -> bytes:
        """The text exposition format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _Observed:
    """Counts every answer (handled failures included) by endpoint, status and time."""

    def __init__(self, app: ASGIApp, metrics: FeatureServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            path = scope.get("path", "")
            endpoint = path if path in _ENDPOINTS else "other"
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


def _refuse(message: str, field: str, status: int = 422) -> PredictionRequestError:
    return PredictionRequestError(message, status=status, field=field)


class _Reader:
    """Resolves what a request asks for and reads it, on a thread of its own pool."""

    def __init__(self, workspace: Any, service: str | None, threads: int) -> None:
        self.workspace = workspace
        self.service = service
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="ctloop-features")

    def wanted(self, document: Mapping[str, Any], service_key: str) -> str | list[str]:
        """The service name or feature references a request asks for."""
        service, features = document.get(service_key), document.get("features")
        if service is not None and features is not None:
            raise _refuse(
                f"the request names both {service_key!r} and 'features'; send one of them",
                "features",
            )
        if service is None and features is None:
            if self.service is not None:
                return self.service
            raise _refuse(
                f"the request names no features; send {service_key!r} (an applied feature "
                "service) or 'features' (a list of view:feature references)",
                "features",
            )
        if service is not None:
            if not isinstance(service, str) or not service:
                raise _refuse(
                    f"{service_key!r} must be a service name, not {service!r}", service_key
                )
            self._check_pinned(service, service_key)
            return service
        if (
            not isinstance(features, list)
            or not features
            or not all(isinstance(f, str) and f for f in features)
        ):
            raise _refuse(
                f"'features' must be a non-empty list of view:feature references, not {features!r}",
                "features",
            )
        self._check_pinned(features, "features")
        return features

    def _check_pinned(self, asked: str | list[str], field: str) -> None:
        if self.service is not None and asked != self.service:
            raise _refuse(
                f"this server serves feature service {self.service!r} only; leave {field!r} "
                f"out or ask for {self.service!r}",
                field,
            )

    async def read(
        self, wanted: str | list[str], rows: list[dict[str, Any]], full: bool
    ) -> OnlineRead:
        """The online values of ``wanted`` for ``rows``; a mistake is a 422 naming it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._read, wanted, rows, full)

    def _read(self, wanted: str | list[str], rows: list[dict[str, Any]], full: bool) -> OnlineRead:
        from ctloop.features._online import read_online
        from ctloop.features._stored import select_features

        field = "features" if isinstance(wanted, list) else "feature_service"
        try:
            selection = select_features(self.workspace, wanted)
        except FeatureError as exc:
            raise _refuse(str(exc), field) from exc
        _check_rows(selection, rows)
        try:
            return read_online(self.workspace, selection, rows, full_feature_names=full)
        except FeatureError as exc:
            raise _refuse(str(exc), "entities") from exc

    def check(self) -> None:
        """Raise unless the online store answers (and a pinned service is applied)."""
        self.workspace.online.read({"__ctloop_health": ["-"]})
        if self.service is not None:
            from ctloop.features._stored import select_features

            select_features(self.workspace, self.service)


def _check_rows(selection: Selection, rows: list[dict[str, Any]]) -> None:
    """Refuse rows that lack a join key or request field the selection needs, naming it."""
    needed = {k: v.name for v in selection.lookups for k in v.join_keys}
    needed.update((f.name, v.name) for v in selection.on_demand for f in v.request)
    for i, row in enumerate(rows):
        for name, view in needed.items():
            if name not in row:
                what = (
                    "join key"
                    if any(name in v.join_keys for v in selection.lookups)
                    else "request field"
                )
                raise _refuse(
                    f"entity row {i} has no {name!r}, a {what} of feature view {view!r}; "
                    f"send it (the row has {', '.join(row) or 'no columns'})",
                    name,
                )


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _feast_rows(entities: object) -> list[dict[str, Any]]:
    """Feast's ``entities`` (column name to a list of values) as rows."""
    if not isinstance(entities, dict) or not entities:
        raise _refuse(
            "'entities' must be an object of columns, each a list of values, such as "
            f'{{"origin": ["EWR", "JFK"]}}; got {_shown(entities)}',
            "entities",
        )
    length: int | None = None
    first = ""
    for name, values in entities.items():
        field = f"entities.{name}"
        if not isinstance(values, list) or not all(_scalar(v) for v in values):
            raise _refuse(
                f"entity column {name!r} must be a list of plain values; got {_shown(values)}",
                field,
            )
        if length is None:
            length, first = len(values), name
        elif len(values) != length:
            raise _refuse(
                f"entity column {name!r} has {len(values)} values but {first!r} has {length}; "
                "send one value per entity row in every column",
                field,
            )
    names = list(entities)
    return [dict(zip(names, row, strict=True)) for row in zip(*entities.values(), strict=True)]


def _native_rows(rows: object) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or not rows:
        raise _refuse(
            "'rows' must be a non-empty list of objects, such as "
            f'[{{"origin": "EWR"}}]; got {_shown(rows)}',
            "rows",
        )
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not all(_scalar(v) for v in row.values()):
            raise _refuse(f"row {i} must be an object of plain values; got {_shown(row)}", "rows")
    return rows


def _shown(value: object) -> str:
    text = orjson.dumps(value).decode() if _jsonable(value) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _jsonable(value: object) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def _document(body: bytes, allowed: set[str]) -> dict[str, Any]:
    from ctloop.serve._json_body import decode_json

    document = decode_json(body)
    if not isinstance(document, dict):
        raise _refuse(
            f"the request body must be a JSON object, not {type(document).__name__}", "body", 400
        )
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise _refuse(
            f"the request has an unknown field {unknown[0]!r}; it takes {', '.join(sorted(allowed))}",
            unknown[0],
        )
    full = document.get("full_feature_names", False)
    if not isinstance(full, bool):
        raise _refuse(
            f"'full_feature_names' must be true or false, not {full!r}", "full_feature_names"
        )
    return document


def _timestamp(event_us: int) -> str:
    if not event_us:
        return _EPOCH
    return datetime.fromtimestamp(event_us / 1_000_000, UTC).isoformat().replace("+00:00", "Z")


def _feast_answer(read: OnlineRead) -> dict[str, Any]:
    entity_columns = [c for c in read.columns if c not in read.statuses]
    results = []
    for name in entity_columns:
        values = read.columns[name]
        results.append(
            {"values": values, "statuses": ["PRESENT"] * len(values),
             "event_timestamps": [_EPOCH] * len(values)}
        )  # fmt: skip
    for name in read.features:
        results.append(
            {"values": read.columns[name], "statuses": read.statuses[name],
             "event_timestamps": [_timestamp(t) for t in read.event_us[name]]}
        )  # fmt: skip
    return {"metadata": {"feature_names": [*entity_columns, *read.features]}, "results": results}


def _json(document: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(document, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC),
        status_code=status,
        media_type="application/json",
    )


def _router(guard: Any, role: Role | None) -> APIRouter:
    """A router whose routes need a key allowing ``role`` when ``guard`` checks keys."""
    if role is None or guard is None:
        return APIRouter()
    from fastapi import Depends
    from fastapi.security import HTTPBearer

    from ctloop.serve._auth import needs

    scheme = HTTPBearer(auto_error=False, description="a ctloop API key: ctl_…")
    return APIRouter(dependencies=[Depends(scheme), Depends(needs(guard, role))])


def create_feature_app(
    workspace: Any,
    *,
    service: str | None = None,
    auth: bool = False,
    threads: int = 4,
    max_body_bytes: int = 10 * 1024 * 1024,
    key_cache_seconds: float | None = None,
) -> FastAPI:
    """The ASGI app serving ``workspace``'s online features (all of them, or only the
    applied feature service ``service``); with ``auth``, a viewer API key of the
    workspace is needed for every endpoint but ``/health`` and ``/metrics``."""
    from ctloop._version import __version__
    from ctloop.serve._answers import _read_body
    from ctloop.serve._errors import add_error_handlers

    reader = _Reader(workspace, service, threads)
    metrics = FeatureServerMetrics()
    guard = None
    if auth:
        from ctloop.serve._auth import KEY_CACHE_SECONDS, KeyGuard

        cache = KEY_CACHE_SECONDS if key_cache_seconds is None else key_cache_seconds
        guard = KeyGuard(workspace.keys, cache_seconds=cache)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            reader.executor.shutdown(wait=False)

    title = "ctloop feature server" + (f": {service}" if service else "")
    app = FastAPI(title=title, version=__version__, lifespan=lifespan)
    app.state.features = reader
    reads = _router(guard, Role.VIEWER)

    @reads.post("/get-online-features", summary="Online features (Feast's protocol)")
    async def get_online_features(request: Request) -> Response:
        document = _document(await _read_body(request, max_body_bytes), _FEAST_KEYS)
        wanted = reader.wanted(document, "feature_service")
        rows = _feast_rows(document.get("entities"))
        read = await reader.read(wanted, rows, document.get("full_feature_names", False))
        metrics.count_read(read, len(rows))
        return _json(_feast_answer(read))

    @reads.post("/features", summary="Online features of rows (ctloop's protocol)")
    async def features(request: Request) -> Response:
        document = _document(await _read_body(request, max_body_bytes), _NATIVE_KEYS)
        wanted = reader.wanted(document, "service")
        rows = _native_rows(document.get("rows"))
        read = await reader.read(wanted, rows, document.get("full_feature_names", False))
        metrics.count_read(read, len(rows))
        columns = read.columns
        out = [{name: columns[name][i] for name in columns} for i in range(len(rows))]
        return _json({"features": list(read.features), "rows": out})

    app.include_router(reads)
    _add_probes(app, reader, metrics)
    add_error_handlers(app)
    app.add_exception_handler(StoreUnavailableError, _unavailable)
    from starlette.exceptions import HTTPException

    app.add_exception_handler(HTTPException, _routing_error)
    app.add_middleware(_Observed, metrics=metrics)
    return app


def _add_probes(app: FastAPI, reader: _Reader, metrics: FeatureServerMetrics) -> None:
    probes = APIRouter()  # probes and scrapes carry no key

    @probes.get("/health", summary="Readiness: the online store answers")
    async def health() -> Response:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(reader.executor, reader.check)
        except (StoreUnavailableError, FeatureError) as exc:
            return _json({"status": "unavailable", "error": str(exc)}, 503)
        return _json({"status": "ok", "service": reader.service})

    @probes.get("/metrics", summary="Prometheus metrics")
    async def scrape() -> Response:
        from ctloop.serve._metrics import CONTENT_TYPE

        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.include_router(probes)


async def _unavailable(request: Request, exc: Exception) -> Response:
    return _json({"error": str(exc), "field": None}, 503)


async def _routing_error(request: Request, exc: Any) -> Response:
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        message = (
            f"there is no endpoint {method} {path} on this feature server; it answers "
            "POST /get-online-features, POST /features, GET /health and GET /metrics"
        )
    elif exc.status_code == 405:
        allowed = {k.lower(): v for k, v in (exc.headers or {}).items()}.get(
            "allow", "another method"
        )
        message = f"{path} does not answer {method}; send {allowed}"
    else:
        message = str(exc.detail)
    response = _json({"error": message, "field": None}, exc.status_code)
    response.headers.update(dict(exc.headers or {}))
    return response


def serve_features(app: FastAPI, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve ``app`` (:func:`create_feature_app`) with uvicorn until stopped."""
    import uvicorn

    from ctloop.serve._server import uvicorn_options

    uvicorn.run(app, **uvicorn_options(host, port))
