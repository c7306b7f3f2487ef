"""Running the prediction server with uvicorn (httptools, uvloop), in one process or
several worker processes that each load the model once.

>>> serve(ServeConfig("flights@champion", store_url=url, artifact_url=art),
...       host="127.0.0.1", port=8080, workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ctloop.errors import ServingError
from ctloop.serve.config import ServeConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["CONFIG_ENV", "app_from_environment", "serve", "uvicorn_options"]

CONFIG_ENV = "CTLOOP_SERVE_CONFIG"
"""The environment variable that hands the config (JSON) to worker processes."""


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """The uvicorn settings ctloop serves with: uvloop, httptools, no access log."""
    return {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "none",
        "access_log": False,
        "log_level": "info",
        "timeout_graceful_shutdown": 10,
    }


def serve(
    config: ServeConfig, *, host: str = "127.0.0.1", port: int = 8080, workers: int = 1
) -> None:
    """Serve until stopped (Ctrl-C or SIGTERM). Binds ``host`` (loopback by default)."""
    import uvicorn

    if workers < 1:
        raise ServingError(f"--workers must be at least 1, not {workers}")
    options = uvicorn_options(host, port)
    if workers == 1:
        from ctloop.serve.app import create_app

        uvicorn.run(create_app(config), **options)
        return
    os.environ[CONFIG_ENV] = config.to_json()
    uvicorn.run(
        "ctloop.serve.server:app_from_environment", factory=True, workers=workers, **options
    )


def app_from_environment() -> FastAPI:
    """The app a worker process serves, built from :data:`CONFIG_ENV`."""
    from ctloop.serve.app import create_app

    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise ServingError(
            f"{CONFIG_ENV} is not set; start worker processes with `ctloop serve --workers N`"
        )
    return create_app(ServeConfig.from_json(text))
