"""Fixtures for the team server: a SQLite workspace with keys of every role, the real
server (uvicorn) on a free loopback port, and an in-process client for unit tests."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from ctloop.server import create_app
from ctloop.store._keys import Role
from ctloop.store.records import utcnow
from ctloop.store.workspace import Workspace


@dataclass
class LiveServer:
    """A running team server: its ``url``, its workspace and a key of each role."""

    url: str
    workspace: Workspace
    keys: dict[str, str]

    def client(self, role: str | None = None) -> httpx.Client:
        """A client sending the key of ``role`` (none when ``None``)."""
        headers = {} if role is None else {"Authorization": f"Bearer {self.keys[role]}"}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=60)


def role_keys(workspace: Workspace) -> dict[str, str]:
    """A key of each role, plus an expired and a revoked admin key."""
    keys = {role: workspace.keys.create(f"{role}-key", role).secret for role in Role}
    past = utcnow() - timedelta(seconds=1)
    keys["expired"] = workspace.keys.create("old", Role.ADMIN, expires_at=past).secret
    revoked = workspace.keys.create("gone", Role.ADMIN)
    workspace.keys.revoke(revoked.record.id)
    keys["revoked"] = revoked.secret
    return keys


def start(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Serve ``app`` on 127.0.0.1 and a free port, in a thread."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The team server on a SQLite workspace, shared by the session."""
    tmp: Path = tmp_path_factory.mktemp("team-server")
    workspace = Workspace.open(f"sqlite:///{tmp / 'metadata.db'}", artifacts=str(tmp / "art"))
    keys = role_keys(workspace)
    server, thread, url = start(create_app(workspace))
    try:
        yield LiveServer(url, workspace, keys)
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()


@pytest.fixture
def memory_app() -> Iterator[tuple[Any, Workspace, dict[str, str]]]:
    """An in-process client of a server on an in-memory workspace (no sockets)."""
    with Workspace.in_memory() as workspace:
        keys = role_keys(workspace)
        with in_process(create_app(workspace)) as client:
            yield client, workspace, keys


def in_process(app: Any) -> Any:
    """Starlette's test client of ``app``: requests answered in this process."""
    with warnings.catch_warnings():
        # starlette asks for httpx2, which this environment does not ship; httpx works
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient
    return TestClient(app, raise_server_exceptions=False)
