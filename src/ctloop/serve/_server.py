"""Running the prediction server with uvicorn (httptools, uvloop), in one process or
several worker processes that each load the model once.

>>> serve(ServeConfig("flights@champion", store_url=url, artifact_url=art),
...       host="127.0.0.1", port=8080, workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ctloop.errors import ServingError, UnsafeModelError
from ctloop.serve._config import ServeConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ctloop.serve._pool import ModelPool

__all__ = [
    "CONFIG_ENV",
    "app_from_environment",
    "check_servable",
    "open_pool",
    "serve",
    "uvicorn_options",
]

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
    """Serve until stopped (Ctrl-C or SIGTERM). Binds ``host`` (loopback by default).

    A model that cannot be served (not registered, not a model, a pickle without trust)
    raises before uvicorn starts: one worker loads it here and serves what it loaded;
    several workers each load their own, so here it is only checked in the registry."""
    import uvicorn

    if workers < 1:
        raise ServingError(f"--workers must be at least 1, not {workers}")
    options = uvicorn_options(host, port)
    if workers == 1:
        from ctloop.serve._app import create_app

        uvicorn.run(create_app(config, pool=open_pool(config)), **options)
        return
    check_servable(config)
    os.environ[CONFIG_ENV] = config.to_json()
    uvicorn.run(
        "ctloop.serve._server:app_from_environment", factory=True, workers=workers, **options
    )


def open_pool(config: ServeConfig) -> ModelPool:
    """The model pool ``config`` serves, with its model loaded.

    >>> config = ServeConfig("flights@champion", store_url=url, artifact_url=art)
    >>> open_pool(config).ready  # doctest: +SKIP
    True
    """
    from ctloop.serve._pool import ModelPool

    pool = ModelPool(
        config.reference,
        workspace=config.open_workspace(),
        cache_dir=config.cache_path(),
        deployment=config.deployment,
    )
    try:
        pool.refresh()
    except UnsafeModelError as exc:
        raise _unsafe(config.reference) from exc
    return pool


def check_servable(config: ServeConfig) -> None:
    """Raise unless ``config.reference`` names a registered model that loads without
    pickle (or with ``CTLOOP_TRUST_PICKLE=1``), reading the registry only.

    >>> check_servable(ServeConfig("nosuch", store_url=url, artifact_url=art))  # doctest: +SKIP
    Traceback (most recent call last):
    ctloop.errors.ModelNotFoundError: model 'nosuch' is not registered; ...
    """
    workspace = config.open_workspace()
    found = workspace.registry.resolve(config.reference)
    record = workspace.metadata.get_artifact(found.artifact_id)
    if record.type != "Model":
        raise ServingError(
            f"{found.reference} is a {record.type} artifact, not a Model; register the output "
            "of a step that returns ctloop.artifacts.model.Model"
        )
    trusted = os.environ.get("CTLOOP_TRUST_PICKLE") == "1"
    if record.properties.get("flavor") == "pickle" and not trusted:
        raise _unsafe(config.reference)


def _unsafe(reference: str) -> UnsafeModelError:
    return UnsafeModelError(
        f"{reference} is stored as a pickle, and loading a pickle runs arbitrary code; "
        "start the server with CTLOOP_TRUST_PICKLE=1 only if you trust everyone who can "
        "write to this store, or register the model in a safe flavor"
    )


def app_from_environment() -> FastAPI:
    """The app a worker process serves, built from :data:`CONFIG_ENV`."""
    from ctloop.serve._app import create_app

    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise ServingError(
            f"{CONFIG_ENV} is not set; start worker processes with `ctloop serve --workers N`"
        )
    return create_app(ServeConfig.from_json(text))
