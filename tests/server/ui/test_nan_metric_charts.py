"""A diverged run (NaN and infinite points among its losses) in the web UI, in Chromium:
the run page lists the values as nan and inf and charts only the finite points, the runs
page sorts by the metric, and the compare page overlays both runs' curves with the
non-finite points left out; no page errs."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from ctloop.server import create_app
from ctloop.store.records import MetricRecord, RunRecord, new_id, utcnow
from ctloop.store.workspace import Workspace
from tests.server.conftest import role_keys, start
from tests.server.ui.conftest import Watch

pytestmark = pytest.mark.chromium

# the diverged run's losses: two of its ten points are not finite
DIVERGED = [1.0, 0.8, 0.6, math.nan, 0.5, math.inf, 0.4, 0.35, 0.3, 0.25]


@pytest.fixture(scope="module")
def diverged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, list[str]]]:
    """A server with a healthy run and a diverged one; (url, viewer key, [healthy, diverged])."""
    tmp = tmp_path_factory.mktemp("nan-ui")
    workspace = Workspace.open(f"sqlite:///{tmp / 'metadata.db'}", artifacts=str(tmp / "art"))
    moment, ids = utcnow(), []
    for name, losses in (("healthy", [1.0 / (1 + s) for s in range(10)]), ("diverged", DIVERGED)):
        run = RunRecord(
            new_id(), name, "v1", f"synthetic:{name}", {}, "manual", "test", "host",
            os.getpid(), "succeeded", moment, ended_at=moment + timedelta(seconds=1),
        )  # fmt: skip
        workspace.metadata.create_run(run)
        metrics = [MetricRecord(run.id, "loss", v, s) for s, v in enumerate(losses)]
        metrics.append(MetricRecord(run.id, "final", losses[-1] if name == "healthy" else math.nan))
        workspace.metadata.log_batch(metrics=metrics)
        ids.append(run.id)
    server, thread, url = start(create_app(workspace))
    try:
        yield url, role_keys(workspace)["viewer"], ids
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()


def _page(browser: Any, url: str, key: str, watch: Watch) -> Any:
    context = browser.new_context(base_url=url)
    context.add_cookies([{"name": "ctloop_key", "value": key, "url": url}])
    page = context.new_page()
    watch.attach(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    return page


def test_a_diverged_run_is_shown_and_charted_without_its_nan_points(
    browser: Any, diverged: tuple[str, str, list[str]], watch: Watch
) -> None:
    url, key, (healthy, bad) = diverged
    page = _page(browser, url, key, watch)
    answer = page.goto(f"/runs/{bad}")
    assert answer is not None and answer.status == 200
    (chart,) = page.locator("canvas.metric-chart[data-title=loss]").all()
    points = json.loads(chart.get_attribute("data-points") or "")
    assert [p[0] for p in points] == [0, 1, 2, 4, 6, 7, 8, 9]  # NaN and inf left out
    body = page.locator("body").inner_text()
    assert "nan" in body and "final" in body

    answer = page.goto("/runs?sort=metrics.final")
    assert answer is not None and answer.status == 200
    expect(page.locator("body")).to_contain_text("diverged")

    page.goto(f"/compare?runs={healthy},{bad}")
    canvas = page.locator("canvas.overlaid[data-key=loss]")
    canvas.scroll_into_view_if_needed()
    expect(canvas).to_have_attribute("data-ready", "1")
    assert canvas.get_attribute("data-lines") == "2"
    assert canvas.get_attribute("data-painted") == "18"  # 10 healthy points, 8 finite ones
    assert watch.errors == [] and watch.failed == [] and watch.refused == []
