"""MLflow's logging routes answered without FastAPI's router: a client logging metric by
metric (``mlflow.log_metric`` in a training loop) sends one request per point, and the
router, its middleware and its dependency solving cost more than storing the point.

:class:`DirectRoutesApp` hands ``POST`` requests to the paths in its
:attr:`~DirectRoutesApp.direct_routes` straight to their handler. Each handler does what
its routed twin does, in the same functions: the key check and the role
(:func:`~ctloop.server._deps.needs`, a refusal audited), the request's fields
(:func:`~ctloop.server._mlflow._protocol.payload`), the write with its audit entry in one
transaction (:func:`~ctloop.server._mlflow._tracking.log_one_item`), and every failure as
MLflow's error body (:func:`~ctloop.server._mlflow._protocol.answer_for`). So both answer
alike; the routes stay registered for everything else (another method, a mounted root
path). Adding a middleware turns the direct routes off, so that it sees every request, and
so does tracing configured for FastAPI.

>>> from ctloop.store.workspace import Workspace
>>> from ctloop.server import create_app
>>> "/api/2.0/mlflow/runs/log-metric" in create_app(Workspace.in_memory(), auth=False).direct_routes
True
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response
from starlette.requests import ClientDisconnect

from ctloop.serve._direct import DirectHandler
from ctloop.serve._direct import DirectRoutesApp as BaseDirectRoutesApp
from ctloop.server._deps import needs
from ctloop.server._mlflow._protocol import answer_for, payload
from ctloop.store._keys import Role

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

    from ctloop.server._auth import Caller

__all__ = ["DirectRoutesApp", "direct_log_routes"]

#: MLflow's two roots of the logging endpoints
_ROOTS = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
_OK = b"{}"


class DirectRoutesApp(BaseDirectRoutesApp):
    """The team server's FastAPI app, whose MLflow logging endpoints (in
    :attr:`direct_routes`) are answered without FastAPI's router and middleware stack
    (the rules are :class:`ctloop.serve._direct.DirectRoutesApp`'s)."""

    _writer: ThreadPoolExecutor | None = None

    def writer(self) -> ThreadPoolExecutor:
        """The threads the direct routes write in (the store's calls block; the event
        loop must not). Plain threads, not AnyIO's: handing a write to one costs a tenth
        of AnyIO's trip."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(thread_name_prefix="ctloop-mlflow-log")
        return self._writer


def direct_log_routes() -> Mapping[str, DirectHandler]:
    """The direct handler of each MLflow logging path."""
    from ctloop.server._mlflow._tracking import (
        log_batch_items,
        log_batch_now,
        log_metric_now,
        log_one_item,
    )

    writes: dict[str, tuple[Write, WriteNow | None]] = {
        "runs/log-metric": (log_one_item, log_metric_now),
        "runs/log-parameter": (log_one_item, None),
        "runs/set-tag": (log_one_item, None),
        "runs/log-batch": (log_batch_items, log_batch_now),
    }
    routes: dict[str, DirectHandler] = {}
    for root in _ROOTS:
        for path, (write, now) in writes.items():
            routes[f"{root}/{path}"] = _handler(write, now)
    return MappingProxyType(routes)


Write = Callable[[Request, dict[str, Any], "Caller"], dict[str, Any]]
"""A route's write (it may block): the request, its fields and caller in, the answer out."""
WriteNow = Callable[[Request, dict[str, Any], "Caller"], bool]
"""A write that never waits, made on the event loop, or ``False`` when it would wait."""


def _handler(write: Write, now: WriteNow | None) -> DirectHandler:
    editor = needs(Role.EDITOR)

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            caller = await editor(request, None)
            data = await payload(request)
            if now is not None and now(request, data, caller):
                answer: dict[str, Any] = {}
            else:
                app: DirectRoutesApp = scope["app"]
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(app.writer(), write, request, data, caller)
            response = Response(_OK if answer == {} else _json(answer), media_type=_JSON)
        except ClientDisconnect:
            return  # nobody is waiting for the answer
        except Exception as exc:  # every failure becomes MLflow's answer, as routed
            response = answer_for(request, exc)
        await response(scope, receive, send)

    return handle


_JSON = "application/json"


def _json(answer: dict[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(answer)
