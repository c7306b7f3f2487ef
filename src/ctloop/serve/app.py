"""The prediction server's ASGI app: native, MLflow and KServe V2 endpoints over one core.

>>> app = create_app(ServeConfig("flights@champion", store_url=url,
...                              artifact_url=art))  # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8080)  # doctest: +SKIP

Endpoints: ``POST /predict``, ``POST /invocations``, ``POST /feedback``; ``GET /ping``,
``/health``, ``/version``, ``/metrics``; the Open Inference Protocol under ``/v2``
(:mod:`ctloop.serve.v2_routes`). Every prediction carries ``x-request-id`` and
``x-model-version`` headers; a client's mistake is a 4xx JSON body
``{"error": sentence, "field": name}``, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request, Response

from ctloop.errors import PredictionRequestError, SignatureError
from ctloop.serve import protocols
from ctloop.serve.config import ServeConfig
from ctloop.serve.core import ModelFailedError, PredictionService
from ctloop.serve.metrics import CONTENT_TYPE, ServingMetrics
from ctloop.serve.openapi import FEEDBACK_BODY, MLFLOW_BODY, NATIVE_BODY

if TYPE_CHECKING:
    from ctloop.serve.pool import ModelPool

__all__ = ["ServeConfig", "create_app"]

log = logging.getLogger(__name__)


@dataclass
class Answer:
    """A handler's result: the JSON ``document``, the model ``version`` that made it, and
    what to run after the answer is sent (the shadow call). ``body``, when given, is sent
    instead of the document (a binary or compressed answer), with ``headers`` and
    ``media_type``."""

    document: dict[str, Any]
    version: int | None = None
    after: Callable[[], Awaitable[None]] | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


Handler = Callable[[bytes, "Request", str], Awaitable[Answer]]


class ServerState:
    """What the endpoints share: the pool, the core, metrics and the feedback logger."""

    def __init__(self, config: ServeConfig, pool: ModelPool) -> None:
        self.config = config
        self.pool = pool
        self.metrics = ServingMetrics()
        self.executor = ThreadPoolExecutor(config.threads, thread_name_prefix="ctloop-predict")
        self.loader = ThreadPoolExecutor(1, thread_name_prefix="ctloop-load")
        self.service = PredictionService(pool, self.metrics, executor=self.executor)
        self.feedback: Any = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load the model, start batching, logging and alias polling."""
        from ctloop.serve.batching import MicroBatcher

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.loader, self.pool.refresh)
        self._show_versions()
        c = self.config
        if c.batch:
            self.service.batcher = MicroBatcher(
                max_batch_size=c.max_batch_size,
                max_wait_ms=c.max_wait_ms,
                executor=self.executor,
                on_batch=self.metrics.batch_size.observe,
            )
        if c.log_predictions:
            self._start_logging()
        if c.poll_seconds > 0:
            self._poller = loop.create_task(self._poll())
        _freeze_heap()

    def _start_logging(self) -> None:
        from ctloop.serve.feedback import FeedbackLogger
        from ctloop.serve.prediction_log import PredictionLogger

        c = self.config
        workspace = self.pool.workspace
        logger = PredictionLogger(
            workspace,
            self.pool.name,
            flush_rows=c.log_flush_rows,
            flush_seconds=c.log_flush_seconds,
            max_queue_rows=c.log_max_queue_rows,
        )
        self.service.logger = logger
        self.metrics.watch_log(lambda: float(logger.errors), lambda: float(logger.dropped))
        self.metrics.watch_rows("prediction_log", logger.counts)
        self.feedback = FeedbackLogger(workspace, self.pool.name, flush_seconds=c.log_flush_seconds)
        self.metrics.watch_rows("feedback", self.feedback.counts)

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.poll_seconds)
            try:
                if await loop.run_in_executor(self.loader, self.pool.refresh):
                    self._show_versions()
            except Exception:  # an unreachable store must not stop the server
                log.exception(
                    "could not refresh model %s; serving the loaded versions", self.pool.name
                )

    def _show_versions(self) -> None:
        r = self.pool.routing
        versions = {"primary": r.primary.version, "canary": None, "shadow": None}
        if r.canary is not None:
            versions["canary"] = r.canary.version
        if r.shadow is not None:
            versions["shadow"] = r.shadow.version
        self.metrics.set_serving(self.pool.name, versions)

    async def stop(self) -> None:
        """Stop polling and batching; flush the logs."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.service.batcher is not None:
            await self.service.batcher.close()
        loop = asyncio.get_running_loop()
        for logger in (self.service.logger, self.feedback):
            if logger is not None:
                await loop.run_in_executor(None, logger.close)
        self.executor.shutdown(wait=False)
        self.loader.shutdown(wait=False)


def create_app(config: ServeConfig, *, pool: ModelPool | None = None) -> FastAPI:
    """The ASGI app serving ``config.reference``; the model loads at startup."""
    from ctloop._version import __version__
    from ctloop.serve.pool import ModelPool

    if pool is None:
        pool = ModelPool(
            config.reference,
            workspace=config.open_workspace(),
            cache_dir=config.cache_path(),
            deployment=config.deployment,
        )
    state = ServerState(config, pool)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(
        title=f"ctloop prediction server: {pool.name}",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.serving = state
    app.openapi = _model_openapi(app, state)  # type: ignore[method-assign]
    _add_prediction_routes(app, state)
    _add_info_routes(app, state)
    from ctloop.serve.v2_routes import add_v2_routes

    add_v2_routes(app, state)
    _add_error_handlers(app)  # after the V2 routes', which answer under /v2
    return app


def _model_openapi(app: FastAPI, state: ServerState) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document of ``app``, exact for the model it serves (request bodies
    typed by the primary version's signature; see
    :func:`ctloop.serve.openapi.describe_model`), rebuilt when the primary changes."""
    from fastapi.openapi.utils import get_openapi

    from ctloop.serve.feedback import label_type
    from ctloop.serve.openapi import columns_taking_missing, describe_model

    built: dict[int | None, dict[str, Any]] = {}

    def document() -> dict[str, Any]:
        pool = state.pool
        primary = pool.routing.primary if pool.ready else None
        key = None if primary is None else primary.version
        if key not in built:
            base = get_openapi(title=app.title, version=app.version, routes=app.routes)
            if primary is not None:
                model = primary.model
                base = describe_model(
                    base,
                    name=pool.name,
                    versions=pool.versions,
                    signature=model.signature,
                    label=label_type(model),
                    missing=columns_taking_missing(model),
                )
            built.clear()
            built[key] = base
        return built[key]

    return document


def _freeze_heap() -> None:
    """Exempt what is loaded by now (libraries, the model) from garbage collection.

    A full collection walks every tracked object; with scikit-learn, pandas and a model
    loaded that is hundreds of thousands, a pause of tens of milliseconds that lands on
    whichever requests are in flight (the p99). Frozen objects are never scanned; what
    requests allocate is collected as before. A model loaded later (a promotion) stays
    in the collected heap until the next freeze, which costs time but not correctness.
    """
    import gc

    gc.collect()
    gc.freeze()


# -- answering ---------------------------------------------------------------------------


async def _answer(
    state: ServerState, protocol: str, request: Request, handler: Handler
) -> Response:
    """Run ``handler`` on the request body; every failure becomes a JSON error answer."""
    start = time.perf_counter()
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    answer = Answer({})
    try:
        body = await _read_body(request, state.config.max_body_bytes)
        answer = await handler(body, request, request_id)
        document = answer.document
        request_id = str(document.get("request_id") or document.get("id") or request_id)
        status = 200
    except Exception as exc:  # every failure is an answer; the server never dies on input
        status, answer.document = _error(exc)
        if not isinstance(exc, ModelFailedError):
            state.metrics.errors.labels("client" if status < 500 else "server", "").inc()
    label = "" if answer.version is None else str(answer.version)
    state.metrics.observe_request(protocol, status, label, time.perf_counter() - start)
    return _json(answer, status, request_id)


def _error(exc: Exception) -> tuple[int, dict[str, Any]]:
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


def _add_error_handlers(app: FastAPI) -> None:
    """Answer FastAPI's own failures (an unknown route, a wrong method, a malformed
    parameter) like every other error, ``{"error": sentence, "field": name}``; under
    ``/v2`` the handler registered before (the V2 routes') answers."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    answers: dict[type[Exception], Callable[[Request, Any], Response]] = {
        HTTPException: _routing_error,
        RequestValidationError: _parameter_error,
    }
    for kind, answer in answers.items():
        app.add_exception_handler(kind, _outside_v2(answer, app.exception_handlers.get(kind)))


def _outside_v2(
    answer: Callable[[Request, Any], Response], v2: Callable[..., Any] | None
) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        path = request.url.path
        if v2 is not None and (path == "/v2" or path.startswith("/v2/")):
            response: Response = await v2(request, exc)
            return response
        return answer(request, exc)

    return handle


def _routing_error(request: Request, exc: Any) -> Response:
    method, path = request.method, request.url.path
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = (
            f"there is no endpoint {method} {path} on this server; it answers POST /predict, "
            "POST /invocations, POST /feedback and the /v2 endpoints (see /docs)"
        )
    elif exc.status_code == 405:
        allowed = {k.lower(): v for k, v in headers.items()}.get("allow", "another method")
        message = f"{path} does not answer {method}; send {allowed}"
    else:
        message = str(exc.detail)
    response = _plain({"error": message, "field": None}, exc.status_code)
    response.headers.update(headers)
    return response


def _parameter_error(request: Request, exc: Any) -> Response:
    problem = exc.errors()[0]
    names = [str(part) for part in problem.get("loc", ()) if part not in ("query", "path")]
    field = names[-1] if names else None
    message = f"the request's {field or 'input'} is invalid: {problem.get('msg', exc)}"
    return _plain({"error": message, "field": field}, 422)


def _json(answer: Answer, status: int, request_id: str) -> Response:
    from starlette.background import BackgroundTask
    from starlette.responses import Response

    headers = {**answer.headers, "x-request-id": request_id}
    if answer.version is not None:
        headers["x-model-version"] = str(answer.version)
    body = answer.body
    if body is None:
        body = orjson.dumps(answer.document, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(
        body,
        status_code=status,
        media_type=answer.media_type,
        headers=headers,
        background=None if answer.after is None else BackgroundTask(answer.after),
    )


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(int(length), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> PredictionRequestError:
    return PredictionRequestError(
        f"the request body has {size} bytes or more, over the server's limit of {limit}; "
        "send fewer rows per request or start the server with a larger --max-body-bytes",
        status=413,
        field="body",
    )


def _plain(document: dict[str, Any], status: int = 200) -> Response:
    from starlette.responses import Response

    return Response(orjson.dumps(document), status_code=status, media_type="application/json")


# -- routes -------------------------------------------------------------------------------


def _add_prediction_routes(app: FastAPI, state: ServerState) -> None:
    service = state.service

    async def predicted(parsed: protocols.PredictionRequest, request_id: str) -> Any:
        return await service.predict(parsed, parsed.request_id or request_id)

    async def native(body: bytes, request: Request, request_id: str) -> Answer:
        p = await predicted(protocols.parse_native(body), request_id)
        document = {
            "predictions": protocols.predictions_list(p.predictions),
            "model_version": p.version,
            "request_id": p.request_id,
        }
        return Answer(document, p.version, p.follow_up)

    async def mlflow(body: bytes, request: Request, request_id: str) -> Answer:
        content_type = request.headers.get("content-type", "application/json")
        p = await predicted(protocols.parse_mlflow(body, content_type), request_id)
        document = {
            "predictions": protocols.predictions_list(p.predictions),
            "model_version": p.version,
            "request_id": p.request_id,
        }
        return Answer(document, p.version, p.follow_up)

    @app.post("/predict", openapi_extra=NATIVE_BODY, summary="Predict (native protocol)")
    async def predict(request: Request) -> Response:
        return await _answer(state, "native", request, native)

    @app.post("/invocations", openapi_extra=MLFLOW_BODY, summary="Predict (MLflow protocol)")
    async def invocations(request: Request) -> Response:
        return await _answer(state, "mlflow", request, mlflow)

    @app.post("/feedback", openapi_extra=FEEDBACK_BODY, summary="Send ground-truth labels")
    async def feedback(request: Request) -> Response:
        async def labels(body: bytes, request: Request, request_id: str) -> Answer:
            from ctloop.serve.feedback import log_feedback

            ids, values = protocols.parse_feedback(body)
            model = state.pool.routing.primary.model
            # checked against the model's label type before the answer; not logged with
            # --no-log-predictions or when the queue is full
            logged = log_feedback(state.feedback, model, state.pool.name, ids, values, time.time())
            return Answer({"accepted": len(ids), "logged": logged, "request_id": request_id})

        return await _answer(state, "feedback", request, labels)


def _add_info_routes(app: FastAPI, state: ServerState) -> None:
    from ctloop._version import __version__

    pool = state.pool

    async def health() -> Response:
        ready = pool.ready
        return _plain({"status": "ok" if ready else "loading"}, 200 if ready else 503)

    app.get("/ping", summary="Liveness (MLflow)")(health)
    app.get("/health", summary="Readiness")(health)

    @app.get("/version", summary="Served model and versions")
    async def version() -> Response:
        r = pool.routing
        return _plain(
            {
                "model": pool.name,
                "reference": state.config.reference,
                "version": r.primary.version,
                "canary": None if r.canary is None else r.canary.version,
                "canary_traffic": r.traffic,
                "shadow": None if r.shadow is None else r.shadow.version,
                "ctloop": __version__,
            }
        )

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        from starlette.responses import Response

        return Response(state.metrics.render(), media_type=CONTENT_TYPE)
