"""Fixtures for the prediction server: a private store with a registered model, and the
real server (uvicorn) on a free loopback port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ctloop.serve._app import ServeConfig, create_app
from ctloop.serve._server import uvicorn_options
from ctloop.store.workspace import Workspace
from tests.serve import _models


@dataclass(frozen=True)
class ServingStore:
    """A temporary metadata store and artifact folder."""

    store_url: str
    artifact_url: str
    tmp: Path

    @property
    def workspace(self) -> Workspace:
        """The workspace on this store."""
        return Workspace.open(self.store_url, artifacts=self.artifact_url)

    def register(self, model: Any, name: str = "flights", alias: str | None = None) -> int:
        """Register ``model`` as the next version of ``name`` (and point ``alias`` at it)."""
        version = _models.register(self.workspace, name, model, self.tmp)
        if alias is not None:
            self.set_alias(alias, version, name)
        return version

    def set_alias(self, alias: str, version: int, name: str = "flights") -> None:
        """Move ``name@alias`` to ``version``."""
        _models.set_alias(self.workspace, name, alias, version)

    def config(self, reference: str = "flights@champion", **changes: Any) -> ServeConfig:
        """A server config for this store (fast log flushes, no polling by default)."""
        base = ServeConfig(
            reference,
            store_url=self.store_url,
            artifact_url=self.artifact_url,
            cache_dir=str(self.tmp / "cache"),
            poll_seconds=0,
            log_flush_seconds=0.2,
        )
        return replace(base, **changes)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServingStore:
    """An empty private store (also the process's default store)."""
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    artifacts = str(tmp_path / "artifacts")
    monkeypatch.setenv("CTLOOP_STORE_URL", url)
    monkeypatch.setenv("CTLOOP_ARTIFACT_URL", artifacts)
    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "home"))
    return ServingStore(url, artifacts, tmp_path)


@pytest.fixture
def champion(store: ServingStore) -> ServingStore:
    """The store with version 1 of ``flights`` (a logistic regression) as champion."""
    store.register(_models.classifier(), alias="champion")
    return store


@dataclass
class LiveServer:
    """A running server: ``url`` and a ``client`` bound to it."""

    url: str
    client: httpx.Client
    app: Any


@contextmanager
def live_server(config: ServeConfig) -> Iterator[LiveServer]:
    """Serve ``config`` with uvicorn on 127.0.0.1 and a free port, in a thread."""
    with live_app(create_app(config)) as live:
        yield live


@contextmanager
def live_app(app: Any) -> Iterator[LiveServer]:
    """Serve the ASGI ``app`` with uvicorn on 127.0.0.1 and a free port, in a thread."""
    options = {**uvicorn_options("127.0.0.1", 0), "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            yield LiveServer(url, client, app)
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Version 1 of ``flights`` served with default settings (batching on), shared by
    the tests of a module that only read."""
    tmp = tmp_path_factory.mktemp("served")
    shared = ServingStore(f"sqlite:///{tmp / 'metadata.db'}", str(tmp / "artifacts"), tmp)
    shared.register(_models.classifier(), alias="champion")
    with live_server(shared.config(log_predictions=False)) as live:
        yield live


ROW = {"x": 0.1, "n": 3, "color": "red", "flag": True}
"""A valid input row."""
