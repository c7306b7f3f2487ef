"""``ctloop serve`` refuses a model it cannot serve before the server starts, and warns
when it listens beyond loopback."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ctloop.artifacts.model import Model
from ctloop.store.workspace import Workspace
from tests.cli.conftest import Cli
from tests.serve import _models
from tests.serve.conftest import ROW


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def register(cli: Cli, model: Model, name: str = "flights") -> None:
    home = Path(cli.env["CTLOOP_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    workspace = Workspace.open(
        f"sqlite:///{home / 'metadata.db'}", artifacts=str(home / "artifacts")
    )
    version = _models.register(workspace, name, model, cli.cwd)
    _models.set_alias(workspace, name, "champion", version)


class Opaque:
    """An estimator no safe flavor saves: only pickle can store it."""

    def predict(self, frame: object) -> list[float]:
        return [0.0] * len(frame)  # type: ignore[arg-type]


def pickled() -> Model:
    frame, _ = _models.training_frame(20)
    return Model.from_estimator(Opaque(), frame, trusted=True)


def serve(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    return cli("serve", *args, "--port", str(free_port()), "--poll-seconds", "0", check=False)


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr and "startup failed" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_unknown_model_is_one_sentence_before_the_server_starts(cli: Cli, workers: str) -> None:
    proc = serve(cli, "nosuch", "--workers", workers)
    assert proc.returncode == 1
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "'nosuch' is not registered" in lines[0]
    assert "Uvicorn" not in proc.stderr and "Started" not in proc.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_pickled_model_is_refused_before_the_server_starts(cli: Cli, workers: str) -> None:
    register(cli, pickled())
    proc = serve(cli, "flights@champion", "--workers", workers)
    assert proc.returncode == 1
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "flights@champion" in lines[0] and "pickle" in lines[0]
    assert "CTLOOP_TRUST_PICKLE=1" in lines[0]


def test_serving_beyond_loopback_warns_that_there_is_no_authentication(cli: Cli) -> None:
    proc = serve(cli, "nosuch", "--host", "0.0.0.0")
    lines = error_lines(proc.stderr)
    assert len(lines) == 2, proc.stderr
    warning, error = lines
    assert warning.startswith("warning: ") and "0.0.0.0" in warning
    assert "no authentication" in warning and "labels" in warning
    assert error.startswith("error: ")
    for host in ("127.0.0.1", "localhost", "::1"):
        quiet = serve(cli, "nosuch", "--host", host)
        assert len(error_lines(quiet.stderr)) == 1, quiet.stderr


def test_one_worker_serves_the_model_it_checked(cli: Cli) -> None:
    register(cli, _models.classifier())
    port = free_port()
    process = cli.popen(
        "serve", "flights@champion", "--port", str(port), "--poll-seconds", "0",
        "--no-log-predictions",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        answer = httpx.post(f"{url}/predict", json={"records": [ROW]})
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=60)
    assert answer.status_code == 200
    assert answer.json()["predictions"] == _models.classifier().predict([ROW]).tolist()
    assert "warning" not in stderr
