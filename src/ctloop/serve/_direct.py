"""A FastAPI app that answers a few hot ``POST`` paths without its router.

Route matching, dependency solving and the middleware layers cost a tenth of a
millisecond of CPU a request: more than a one-row ONNX prediction or storing one metric
point. :class:`DirectRoutesApp` hands ``POST`` requests to the paths in its
:attr:`~DirectRoutesApp.direct_routes` straight to their ASGI handler; every other path or
method, a mounted root path, and a request while FastAPI's tracing is configured go
through the stack as usual (the routes stay registered, so OpenAPI is unchanged). Adding
a middleware empties :attr:`~DirectRoutesApp.direct_routes`, so that it sees every request.
The prediction server (:class:`ctloop.serve._app.ServingApp`) and the team server's MLflow
logging routes (:mod:`ctloop.server._mlflow._direct`) are both built on it.

>>> DirectRoutesApp().direct_routes
mappingproxy({})
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

__all__ = ["DirectHandler", "DirectRoutesApp"]

DirectHandler = Callable[["Scope", "Receive", "Send"], Awaitable[None]]
"""An ASGI handler of one path."""


class DirectRoutesApp(FastAPI):
    """A FastAPI app whose ``POST`` endpoints in :attr:`direct_routes` are answered
    without FastAPI's router and middleware stack (see the module docstring)."""

    direct_routes: Mapping[str, DirectHandler] = MappingProxyType({})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        routes = self.direct_routes
        if routes and scope["type"] == "http" and scope["method"] == "POST":
            handler = routes.get(scope["path"])
            mounted = scope.get("root_path") or self.root_path
            if handler is not None and not mounted and not self._traced():
                scope["app"] = self
                await handler(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    _tracing = False
    _tracing_checked = float("-inf")

    def _traced(self) -> bool:
        """Whether FastAPI's tracing is configured, looked up at most once a second
        (the lookup walks OpenTelemetry's providers, a third of the routing it spares)."""
        now = time.monotonic()
        if now - self._tracing_checked >= 1.0:
            telemetry = getattr(self, "_native_telemetry", None)
            self._tracing = telemetry is not None and bool(telemetry.enabled())
            self._tracing_checked = now
        return self._tracing

    def add_middleware(self, middleware_class: Any, *args: Any, **kwargs: Any) -> None:
        super().add_middleware(middleware_class, *args, **kwargs)
        self.direct_routes = MappingProxyType({})  # the middleware sees every request
