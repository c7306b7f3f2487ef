"""``ctloop loadtest`` against a real HTTP server on loopback that counts what it gets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ctloop.errors import LoadTestError
from ctloop.serve._loadtest import (
    LoadTestConfig,
    LoadTestResult,
    check_bounds,
    load_bodies,
    run_load_test,
    target_url,
)

REPO = Path(__file__).resolve().parents[2]
FAIL_EVERY = 4


@dataclass
class Counts:
    """What the server saw, per route."""

    predict: int = 0
    flaky: int = 0
    flaky_errors: int = 0
    bodies: list[bytes] = field(default_factory=list)

    def reset(self) -> None:
        self.predict = self.flaky = self.flaky_errors = 0
        self.bodies.clear()


def _app(counts: Counts) -> Starlette:
    async def predict(request: Request) -> JSONResponse:
        counts.predict += 1
        counts.bodies.append(await request.body())
        return JSONResponse({"predictions": [1.0]})

    async def flaky(request: Request) -> JSONResponse:
        counts.flaky += 1
        if counts.flaky % FAIL_EVERY == 0:
            counts.flaky_errors += 1
            return JSONResponse({"error": "every fourth request fails"}, status_code=500)
        return JSONResponse({"predictions": [1.0]})

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/flaky", flaky, methods=["POST"]),
        ]
    )


@dataclass
class Server:
    url: str
    counts: Counts


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[str, Counts]]:
    counts = Counts()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        _app(counts), log_level="warning", lifespan="off", ws="none", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.01)
        assert thread.is_alive(), "the test server did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", counts
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def server(running: tuple[str, Counts]) -> Server:
    url, counts = running
    counts.reset()  # a fresh tally for each test
    return Server(url, counts)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ctloop(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "ctloop", "loadtest", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


# -- the library -------------------------------------------------------------------------
def test_timed_run_measures_every_request_it_sends(server: Server) -> None:
    config = LoadTestConfig(
        f"{server.url}/predict", body=b'{"x": 1}', concurrency=4, duration_s=1.0, warmup_s=0
    )
    result = run_load_test(config)

    assert result.requests > 0
    assert result.requests == server.counts.predict  # no warm-up: every request is measured
    assert result.errors == 0 and result.error_rate == 0
    assert result.status_counts == {"200": result.requests}
    assert result.qps == pytest.approx(result.requests / result.duration_s)
    assert 0 < result.p50_ms <= result.p90_ms <= result.p95_ms <= result.p99_ms <= result.max_ms
    assert result.p50_ms <= result.max_ms and result.mean_ms <= result.max_ms
    assert result.concurrency == 4
    assert set(server.counts.bodies) == {b'{"x": 1}'}


def test_errors_are_counted_as_the_server_counts_them(server: Server) -> None:
    config = LoadTestConfig(f"{server.url}/flaky", concurrency=3, duration_s=1.0, warmup_s=0)
    result = run_load_test(config)

    assert result.requests == server.counts.flaky
    assert result.errors == server.counts.flaky_errors == result.requests // FAIL_EVERY
    assert result.error_rate == pytest.approx(server.counts.flaky_errors / server.counts.flaky)
    assert result.status_counts == {
        "200": result.requests - result.errors,
        "500": result.errors,
    }


def test_warmup_requests_reach_the_server_but_not_the_figures(server: Server) -> None:
    config = LoadTestConfig(f"{server.url}/predict", concurrency=2, duration_s=0.5, warmup_s=0.3)
    result = run_load_test(config)
    assert 0 < result.requests < server.counts.predict


def test_requests_mode_sends_exactly_n_bodies_round_robin(server: Server, tmp_path: Path) -> None:
    body_file = tmp_path / "bodies.jsonl"
    body_file.write_text('{"id": 1}\n{"id": 2}\n\n{"id": 3}\n')
    bodies = load_bodies(body_file=body_file)
    assert bodies == (b'{"id": 1}', b'{"id": 2}', b'{"id": 3}')

    result = run_load_test(LoadTestConfig(server.url, body=bodies, concurrency=5, requests=30))

    assert result.requests == server.counts.predict == 30  # a URL without a path hits /predict
    assert sorted(server.counts.bodies) == sorted(bodies * 10)


def test_check_bounds_names_each_missed_bound() -> None:
    result = LoadTestResult(
        url="http://127.0.0.1:8080/predict",
        method="POST",
        requests=200,
        errors=5,
        error_rate=0.025,
        qps=850.25,
        p50_ms=5.0,
        p90_ms=12.0,
        p95_ms=20.0,
        p99_ms=31.2,
        max_ms=40.0,
        mean_ms=7.0,
        duration_s=0.235,
        concurrency=4,
        status_counts={"200": 195, "500": 5},
    )
    assert check_bounds(result) == []
    assert check_bounds(result, max_p99_ms=40, min_qps=800, max_error_rate=0.05) == []
    assert check_bounds(result, max_p99_ms=20, min_qps=1000, max_error_rate=0.01) == [
        "p99 latency 31.2 ms is above the bound of 20 ms",
        "throughput 850.2 requests/s is below the bound of 1000 requests/s",
        "error rate 2.50% (5 of 200 requests) is above the bound of 1.00%",
    ]


def test_unreachable_server_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{_free_port()}/predict"
    with pytest.raises(LoadTestError, match="start the prediction server") as caught:
        run_load_test(LoadTestConfig(url, requests=1))
    assert url in str(caught.value)


def test_bad_settings_and_bodies_are_named(tmp_path: Path) -> None:
    with pytest.raises(LoadTestError, match="the --body value is not valid JSON"):
        load_bodies("{inputs: [1]}")
    bad_lines = tmp_path / "bodies.jsonl"
    bad_lines.write_text('{"id": 1}\nnot json\n')
    with pytest.raises(LoadTestError, match="line 2 of the body file"):
        load_bodies(body_file=bad_lines)
    with pytest.raises(LoadTestError, match="concurrency must be at least 1, not 0"):
        LoadTestConfig("http://127.0.0.1:8080", concurrency=0)
    with pytest.raises(LoadTestError, match="is not an http"):
        LoadTestConfig("127.0.0.1:8080")
    assert target_url("http://h:1/a?b=1", path="invocations") == "http://h:1/invocations?b=1"


# -- the command -------------------------------------------------------------------------
def test_cli_json_exits_1_and_names_a_missed_bound(server: Server) -> None:
    proc = _ctloop(
        f"{server.url}/flaky", "-c", "2", "-d", "0.5", "--warmup", "0",
        "--max-p99-ms", "0.001", "--json",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["requests"] == server.counts.flaky
    assert report["errors"] == server.counts.flaky_errors
    assert report["passed"] is False
    assert report["missed_bounds"][0].startswith("p99 latency")
    assert "is above the bound of 0.001 ms" in proc.stderr


def test_cli_exits_0_when_generous_bounds_are_met(server: Server) -> None:
    proc = _ctloop(
        server.url, "--requests", "25", "-c", "3", "--body", '{"x": 2}',
        "--max-p99-ms", "60000", "--min-qps", "0.01", "--max-error-rate", "0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert server.counts.predict == 25
    assert "p99" in proc.stdout and "200: 25" in proc.stdout


def test_cli_unreachable_server_and_usage_errors(server: Server) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    proc = _ctloop(url, "-n", "1")
    assert proc.returncode == 1
    assert f"{url}/predict" in proc.stderr and "start the prediction server" in proc.stderr

    bad_body = _ctloop(server.url, "-n", "1", "--body", "{nope")
    assert bad_body.returncode == 2
    assert "not valid JSON" in bad_body.stderr
    assert server.counts.predict == 0
