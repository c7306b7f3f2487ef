"""The prediction server's ASGI app: native, MLflow and KServe V2 endpoints over one core.

>>> app = create_app(ServeConfig("flights@champion", store_url=url,
...                              artifact_url=art))  # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=8080)  # doctest: +SKIP

Endpoints: ``POST /predict``, ``POST /invocations``, ``POST /feedback``; ``GET /ping``,
``/health``, ``/version``, ``/metrics``; the Open Inference Protocol under ``/v2``
(:mod:`ctloop.serve._v2_routes`). Every prediction carries ``x-request-id`` and
``x-model-version`` headers; a client's mistake is a 4xx JSON body
``{"error": sentence, "field": name}``, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request, Response

from ctloop.serve import _protocols as protocols
from ctloop.serve._answers import Answer, answered, header, plain, read_request
from ctloop.serve._config import ServeConfig
from ctloop.serve._core import PredictionService
from ctloop.serve._direct import DirectHandler, DirectRoutesApp
from ctloop.serve._errors import add_error_handlers
from ctloop.serve._event_time import EVENT_TIME_HEADER, feedback_event_times, with_event_times
from ctloop.serve._metrics import CONTENT_TYPE, ServingMetrics
from ctloop.serve._openapi import FEEDBACK_BODY, MLFLOW_BODY, NATIVE_BODY
from ctloop.store._keys import Role

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from ctloop.serve._auth import KeyGuard
    from ctloop.serve._pool import ModelPool

__all__ = ["ServeConfig", "ServingApp", "create_app"]

log = logging.getLogger("ctloop.serve.app")

Handler = Callable[[Request], Awaitable[Response]]
"""A route's endpoint: the request in, the response out."""


class ServingApp(DirectRoutesApp):
    """The prediction server's FastAPI app, whose prediction endpoints (``POST
    /predict`` and ``POST /invocations``, given to :meth:`answer_directly`) are answered
    without FastAPI's router and middleware stack.

    Those endpoints take no parameters, dependencies or middleware of their own, and
    every failure they raise is answered by :func:`ctloop.serve._errors.failure_response`,
    the handler the stack would give it; calling them directly spares each request the
    route matching, the dependency solving and the middleware layers (about a tenth of a
    millisecond of CPU). The rules of when the stack is used all the same are
    :class:`~ctloop.serve._direct.DirectRoutesApp`'s."""

    def answer_directly(self, handlers: Mapping[str, Handler]) -> None:
        """Answer ``POST`` requests to each path of ``handlers`` without the stack."""
        self.direct_routes = MappingProxyType(
            {path: _direct_handler(handler) for path, handler in handlers.items()}
        )


def _direct_handler(handler: Handler) -> DirectHandler:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await _answer_directly(handler, scope, receive, send)

    return answer


async def _answer_directly(handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
    from ctloop.serve._errors import failure_response

    request = Request(scope, receive)
    try:
        response = await handler(request)
    except Exception as exc:  # answered as the app's exception handlers answer it
        response = await failure_response(request, exc)
    await response(scope, receive, send)


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
        self.guard: KeyGuard | None = None
        if config.auth:
            from ctloop.serve._auth import KeyGuard

            # keys are read on asyncio's default threads: the loader may be busy loading
            keys = pool.workspace.keys
            self.guard = KeyGuard(keys, cache_seconds=config.key_cache_seconds)
        self._poller: asyncio.Task[None] | None = None

    def router(self, role: Role | None) -> APIRouter:
        """A router whose routes need a key allowing ``role`` when the server checks keys
        (``--auth``); ``None``: open to anyone (health probes, metrics scrapes)."""
        if role is None or self.guard is None:
            return APIRouter()
        from fastapi import Depends
        from fastapi.security import HTTPBearer

        from ctloop.serve._auth import needs

        scheme = HTTPBearer(auto_error=False, description="a ctloop API key: ctl_…")
        return APIRouter(dependencies=[Depends(scheme), Depends(needs(self.guard, role))])

    async def start(self) -> None:
        """Load the model, start batching, logging and alias polling."""
        from ctloop.serve._batching import MicroBatcher

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
        from ctloop.serve._feedback import FeedbackLogger
        from ctloop.serve._prediction_log import PredictionLogger

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
        self.metrics.close()  # with several workers: the flushed logs' last counts
        self.executor.shutdown(wait=False)
        self.loader.shutdown(wait=False)


def create_app(config: ServeConfig, *, pool: ModelPool | None = None) -> ServingApp:
    """The ASGI app serving ``config.reference``; the model loads at startup."""
    from ctloop._version import __version__
    from ctloop.serve._pool import ModelPool

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

    app = ServingApp(
        title=f"ctloop prediction server: {pool.name}",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.serving = state
    app.openapi = _model_openapi(app, state)  # type: ignore[method-assign]
    direct = _add_prediction_routes(app, state)
    _add_info_routes(app, state)
    from ctloop.serve._v2_routes import add_v2_routes

    add_v2_routes(app, state)
    add_error_handlers(app)
    if state.guard is None:  # a route that checks keys takes FastAPI's dependencies
        app.answer_directly(direct)
    return app


def _model_openapi(app: FastAPI, state: ServerState) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document of ``app``, exact for the model it serves (request bodies
    typed by the primary version's signature; see
    :func:`ctloop.serve._openapi.describe_served_model`), rebuilt when the primary changes."""
    from fastapi.openapi.utils import get_openapi

    from ctloop.serve._openapi import describe_served_model

    built: dict[int | None, dict[str, Any]] = {}

    def document() -> dict[str, Any]:
        pool = state.pool
        primary = pool.routing.primary if pool.ready else None
        key = None if primary is None else primary.version
        if key not in built:
            base = get_openapi(title=app.title, version=app.version, routes=app.routes)
            if primary is not None:
                base = describe_served_model(
                    base, name=pool.name, versions=pool.versions, model=primary.model
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


# -- routes -------------------------------------------------------------------------------

_EVENT_TIME = EVENT_TIME_HEADER.lower().encode("latin-1")


def _add_prediction_routes(app: FastAPI, state: ServerState) -> dict[str, Handler]:
    """Add the prediction and feedback routes; the prediction endpoints by path."""
    service, metrics = state.service, state.metrics
    limit = state.config.max_body_bytes
    router = state.router(Role.VIEWER)

    async def predicted(parsed: protocols.PredictionRequest, request: Request) -> Answer:
        inputs = state.pool.routing.primary.model.signature.input_names
        parsed = with_event_times(parsed, header(request, _EVENT_TIME), inputs)
        p = await service.predict(parsed, parsed.request_id or request.state.request_id)
        if p.outputs is None:
            predictions = protocols.predictions_list(p.predictions)
        else:  # the model's transform answers: one object per row
            predictions = protocols.output_records(p.outputs)
        document = {
            "predictions": predictions,
            "model_version": p.version,
            "request_id": p.request_id,
        }
        return Answer(document, p.version, p.follow_up)

    @router.post("/predict", openapi_extra=NATIVE_BODY, summary="Predict (native protocol)")
    async def predict(request: Request) -> Response:
        body = await read_request(request, "native", limit)
        return answered(metrics, request, await predicted(protocols.parse_native(body), request))

    @router.post("/invocations", openapi_extra=MLFLOW_BODY, summary="Predict (MLflow protocol)")
    async def invocations(request: Request) -> Response:
        body = await read_request(request, "mlflow", limit)
        sent = header(request, b"content-type")
        content_type = "application/json" if sent is None else sent
        parsed = protocols.parse_mlflow(body, content_type)
        return answered(metrics, request, await predicted(parsed, request))

    app.include_router(router)
    writes = state.router(Role.EDITOR)

    @writes.post("/feedback", openapi_extra=FEEDBACK_BODY, summary="Send ground-truth labels")
    async def feedback(request: Request) -> Response:
        from ctloop.serve._feedback import log_feedback

        body = await read_request(request, "feedback", limit)
        labels = protocols.parse_feedback_request(body)
        header = request.headers.get(EVENT_TIME_HEADER)
        events = feedback_event_times(labels.event_times, header)
        model = state.pool.routing.primary.model
        ids = labels.request_ids
        # checked against the model's label type before the answer; not logged with
        # --no-log-predictions or when the queue is full
        logged = log_feedback(
            state.feedback, model, state.pool.name, ids, labels.labels, time.time(), events
        )
        document = {"accepted": len(ids), "logged": logged, "request_id": request.state.request_id}
        return answered(metrics, request, Answer(document))

    app.include_router(writes)
    return {"/predict": predict, "/invocations": invocations}


def _add_info_routes(app: FastAPI, state: ServerState) -> None:
    from ctloop._version import __version__

    pool = state.pool
    probes = state.router(None)  # probes and scrapes carry no key

    async def health() -> Response:
        ready = pool.ready
        return plain({"status": "ok" if ready else "loading"}, 200 if ready else 503)

    probes.get("/ping", summary="Liveness (MLflow)")(health)
    probes.get("/health", summary="Readiness")(health)

    @probes.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        from starlette.responses import Response

        return Response(state.metrics.render(), media_type=CONTENT_TYPE)

    reads = state.router(Role.VIEWER)

    @reads.get("/version", summary="Served model and versions")
    async def version() -> Response:
        r = pool.routing
        return plain(
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

    app.include_router(probes)
    app.include_router(reads)
