"""``ctloop serve`` as a user runs it: a subprocess with worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx

from tests.serve import _models
from tests.serve.conftest import ROW, ServingStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_with_two_workers(champion: ServingStore) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CTLOOP_STORE_URL": champion.store_url,
        "CTLOOP_ARTIFACT_URL": champion.artifact_url,
    }
    command = [
        sys.executable,
        "-m",
        "ctloop",
        "serve",
        "flights@champion",
        "--port",
        str(port),
        "--workers",
        "2",
        "--no-log-predictions",
        "--poll-seconds",
        "0",
        "--cache-dir",
        str(champion.tmp / "cache"),
    ]
    log = champion.tmp / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        answers = [httpx.post(f"{url}/predict", json={"records": [ROW]}) for _ in range(4)]
    finally:
        process.terminate()
        process.wait(60)
    expected = _models.classifier().predict([ROW]).tolist()
    assert {a.status_code for a in answers} == {200}
    assert all(a.json()["predictions"] == expected for a in answers)


def test_serve_help_lists_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ctloop", "serve", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for option in ("--port", "--workers", "--no-batch", "--max-batch-size", "--max-wait-ms"):
        assert option in result.stdout
