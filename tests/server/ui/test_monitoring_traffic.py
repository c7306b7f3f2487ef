"""Prediction volume and latency on the monitoring page, from a real ``ctloop serve``: the
server logs each request's latency, three daily monitoring windows (on event time) judge
what it logged, and the API and the page show each window's requests, predictions and
latency percentiles on the drift heatmap's time axis."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ctloop.artifacts._logs import read_predictions
from ctloop.config import Settings
from ctloop.server import create_app
from ctloop.store.workspace import Workspace
from tests.monitor.conftest import END, FEATURES, make_rows, training
from tests.serve.test_serve_cli import free_port
from tests.server.conftest import role_keys, start
from tests.server.ui.conftest import Watch
from tests.server.ui.pages import rows
from tests.server.ui.test_ops_pages import shoot

pytestmark = pytest.mark.chromium

MODEL = "flights"
#: requests of each day: (rows per request, requests)
DAYS = [(5, 8), (5, 12), (60, 1)]


@dataclass
class Served:
    url: str
    workspace: Workspace
    keys: dict[str, str]
    sent: list[tuple[int, int]]  # per day: predictions, requests


def _serve_and_send(settings: Settings, tmp: Path) -> list[tuple[int, int]]:
    """Serve ``flights@champion`` with ``ctloop serve`` and send each day's requests,
    stamped with event times in that day; stop it (the log is written on the way out)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env |= {"CTLOOP_STORE_URL": settings.store_url, "CTLOOP_ARTIFACT_URL": settings.artifact_url}
    env["CTLOOP_HOME"] = str(settings.home)
    command = [sys.executable, "-m", "ctloop", "serve", f"{MODEL}@champion", "--port", str(port)]
    command += ["--poll-seconds", "0", "--log-flush-seconds", "0.2"]
    command += ["--cache-dir", str(tmp / "cache")]
    log = tmp / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    sent = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "ctloop serve did not come up"
                time.sleep(0.2)
            for day, (size, requests) in enumerate(DAYS):
                start_at = END - timedelta(days=len(DAYS) - day)
                for k in range(requests):
                    frame = make_rows(size, 100 * day + k)[FEATURES]
                    moment = start_at + timedelta(hours=1 + k)
                    answer = client.post(
                        "/predict",
                        json={"records": frame.to_dict("records")},
                        headers={"X-Event-Time": moment.isoformat()},
                    )
                    assert answer.status_code == 200, answer.text
                sent.append((size * requests, requests))
    finally:
        process.terminate()
        process.wait(60)
    assert process.returncode == 0, log.read_text()
    return sent


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from ctloop.monitor import run_monitor

    tmp: Path = tmp_path_factory.mktemp("traffic")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CTLOOP_HOME", str(tmp / "home"))
        for name in ("CTLOOP_STORE_URL", "CTLOOP_ARTIFACT_URL", "CTLOOP_EXECUTOR", "CTLOOP_SERVER"):
            patch.delenv(name, raising=False)
        patch.chdir(tmp)
        settings = Settings.load()
        workspace = Workspace.from_settings(settings)
        trained = training.run(workspace=workspace, rows=1000)
        artifact = trained.outputs["train_and_evaluate"]["model"].id
        workspace.registry.register_version(MODEL, artifact, run_id=trained.run_id)
        workspace.registry.set_alias(MODEL, "champion", 1, by="setup", reason="first model")
        sent = _serve_and_send(settings, tmp)
        on_events = dataclasses.replace(settings, monitoring={"window_on": "event_time"})
        for day in range(len(DAYS)):
            end = END - timedelta(days=len(DAYS) - day - 1)
            run_monitor(workspace, MODEL, "1d", end=end, settings=on_events, alert=False)
    server, thread, url = start(create_app(workspace))
    try:
        yield Served(url, workspace, role_keys(workspace), sent)
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()


def per_request_latencies(served: Served, day: int) -> np.ndarray:
    """The logged latency of each request of ``day`` (its rows share one)."""
    logged = read_predictions(served.workspace, MODEL, on="event_time")
    start_at = END - timedelta(days=len(DAYS) - day)
    inside = logged[
        (logged["event_time"] >= start_at) & (logged["event_time"] < start_at + timedelta(days=1))
    ]
    requests = inside["request_id"].str.replace(r"-\d+$", "", regex=True)
    return inside.groupby(requests)["latency_ms"].agg(["min", "max"]).to_numpy()


def test_the_api_answers_each_windows_volume_and_latency_percentiles(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.keys['viewer']}"}
    answer = httpx.get(f"{served.url}/api/v1/monitoring/{MODEL}", headers=headers, timeout=30)
    assert answer.status_code == 200
    windows = answer.json()["windows"]
    assert len(windows) == len(DAYS)
    for day, window in enumerate(windows):
        traffic = window["traffic"]
        predictions, requests = served.sent[day]
        assert (traffic["predictions"], traffic["requests"]) == (predictions, requests)
        assert window["rows"] == predictions
        spans = per_request_latencies(served, day)
        assert len(spans) == requests and (spans[:, 0] == spans[:, 1]).all()
        latencies = spans[:, 0]
        expected = {
            p: round(float(np.percentile(latencies, int(p[1:]))), 2) for p in ("p50", "p99")
        }
        got = traffic["latency_ms"]
        assert {p: got[p] for p in expected} == expected
        assert 0 < got["p50"] <= got["p90"] <= got["p99"] <= got["max"] < 30_000
        assert got["max"] == round(float(latencies.max()), 2)


@pytest.fixture
def page(browser: Any, served: Served, watch: Watch) -> Iterator[Any]:
    context = browser.new_context(base_url=served.url, viewport={"width": 1280, "height": 900})
    host = served.url.split("//")[1].split(":")[0]
    cookie = {"name": "ctloop_key", "value": served.keys["viewer"], "domain": host}
    context.add_cookies([{**cookie, "path": "/", "httpOnly": True, "sameSite": "Strict"}])
    opened = context.new_page()
    watch.attach(opened)
    yield opened
    context.close()
    assert watch.errors == [], f"console errors: {watch.errors}"
    assert watch.failed == [], f"failed requests: {watch.failed}"
    assert watch.refused == [], f"answers >= 400: {watch.refused}"


def test_the_page_draws_volume_and_latency_on_the_heatmaps_axis(page: Any, served: Served) -> None:
    page.goto(f"/monitoring/{MODEL}")
    page.wait_for_load_state()
    columns = page.eval_on_selector_all(
        "#heatmap rect.verdict", "rs => rs.map(r => +r.getAttribute('x'))"
    )
    bars = page.eval_on_selector_all(
        "#volume rect.bar", "rs => rs.map(r => [+r.getAttribute('x'), +r.getAttribute('height')])"
    )
    points = page.eval_on_selector_all(
        "#latency circle.point", "cs => cs.map(c => +c.getAttribute('cx'))"
    )
    assert len(columns) == len(bars) == len(points) == len(DAYS)
    # one column per window on every chart: each bar and point sits on its heatmap column
    cell = columns[1] - columns[0]
    for column, (bar, _), point in zip(columns, bars, points, strict=True):
        assert column - 1 <= bar < column + cell and column <= point < column + cell
    heights = [height for _, height in bars]
    volumes = [predictions for predictions, _ in served.sent]
    assert heights.index(max(heights)) == volumes.index(max(volumes))
    assert page.locator("#latency path.reference").count() == 1  # p50, dashed
    box = page.locator("#latency svg").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 80
    shown = rows(page, "#windows")  # newest first: requests, p50, p99
    headers = page.eval_on_selector_all("#windows th", "hs => hs.map(h => h.innerText.trim())")
    at = headers.index("requests")
    assert [int(r[at]) for r in shown] == [requests for _, requests in reversed(served.sent)]
    assert all(float(r[at + 2]) >= float(r[at + 1]) > 0 for r in shown)
    shoot(page, "monitoring-traffic")
