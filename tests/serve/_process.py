"""``ctloop serve`` in its own process on 127.0.0.1, for tests that need the real server:
started on a free port against a SQLite workspace in ``tmp``, waited for until
``/health`` answers, stopped on exit."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.serve.test_serve_cli import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Process:
    url: str
    log: Path
    env: dict[str, str]
    pid: int = 0  # the ctloop serve process (with --workers, uvicorn's supervisor)


def workspace_urls(tmp: Path) -> tuple[str, str]:
    """The store URL and artifact root of the test workspace in ``tmp``."""
    return f"sqlite:///{tmp / 'metadata.db'}", str(tmp / "artifacts")


@contextlib.contextmanager
def serve_process(tmp: Path, reference: str, *options: str) -> Iterator[Process]:
    """``ctloop serve REFERENCE OPTIONS`` on the workspace of ``tmp``; the repository is on
    its path (transforms and canaries are imported from ``tests.serve``)."""
    store_url, artifacts = workspace_urls(tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env |= {
        "CTLOOP_STORE_URL": store_url,
        "CTLOOP_ARTIFACT_URL": artifacts,
        "CTLOOP_HOME": str(tmp / "home"),
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO)]))
    port = free_port()
    command = [sys.executable, "-m", "ctloop", "serve", reference, "--port", str(port), *options]
    log = tmp / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, f"the server did not come up:\n{log.read_text()}"
            time.sleep(0.2)
        yield Process(url, log, env, server.pid)
    finally:
        server.terminate()
        server.wait(30)
