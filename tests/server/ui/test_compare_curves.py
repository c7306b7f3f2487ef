"""The compare page overlays the runs' training curves, in Chromium: one chart per metric
that two or more of the runs logged over steps, a line per run in the run's colour (the
same in every chart), the points read from the REST API's metric history."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from ctloop.server import create_app
from ctloop.server._ui._run_pages import RUN_COLOURS
from ctloop.store.records import MetricRecord, RunRecord, new_id, utcnow
from ctloop.store.workspace import Workspace
from tests.server.conftest import role_keys, start
from tests.server.ui.conftest import UiServer, Watch

pytestmark = pytest.mark.chromium

SHOTS = Path(__file__).resolve().parents[3] / "build" / "ui-screenshots"
MANY = 20
STEPS = 40

# the pixels of the canvas painted exactly in each colour given (lines are 2 px wide)
COUNT_COLOURS = """(c, colours) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const want = colours.map(h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)));
  const n = want.map(() => 0);
  for (let i = 0; i < d.length; i += 4)
    want.forEach((w, k) => { if (d[i] === w[0] && d[i+1] === w[1] && d[i+2] === w[2]) n[k]++; });
  return n;
}"""


def curves_shown(page: Any) -> dict[str, Any]:
    """Each overlaid chart's metric key -> its canvas, once every chart has read its data."""
    for canvas in page.locator("canvas.overlaid").all():
        canvas.scroll_into_view_if_needed()
    expect(page.locator("canvas.overlaid:not([data-ready])")).to_have_count(0)
    return {c.get_attribute("data-key"): c for c in page.locator("canvas.overlaid").all()}


def painted(canvas: Any, colours: list[str]) -> list[int]:
    return canvas.evaluate(COUNT_COLOURS, colours)


def test_two_runs_curves_are_overlaid_a_line_per_run(signed_in: Any, ui_server: UiServer) -> None:
    first, second = ui_server.runs[1], ui_server.runs[2]
    store = ui_server.workspace.metadata
    curves = [
        {
            p.key
            for p in store.get_metrics(run)
            if sum(q.key == p.key for q in store.get_metrics(run)) > 1
        }
        for run in (first, second)
    ]
    shared = sorted(curves[0] & curves[1])
    assert "mse" in shared  # the sample pipeline logs mse over steps
    page = signed_in("viewer")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/compare?runs={first},{second}")
    charts = curves_shown(page)
    assert sorted(charts) == shared
    mse = charts["mse"]
    assert (
        mse.get_attribute("data-lines") == "2"
        and mse.get_attribute("data-runs") == f"{first},{second}"
    )
    assert all(n > 100 for n in painted(mse, list(RUN_COLOURS[:2]))), "a run's line is missing"
    legend = page.locator(".compare-curve[data-key=mse] .legend a.run-key")
    assert legend.evaluate_all("as => as.map(a => a.dataset.run)") == [first, second]
    assert legend.first.inner_text().strip().startswith(first[:8])
    mse.hover(position={"x": 400, "y": 120})  # each run's value under the pointer
    expect(mse).to_have_attribute("data-readout", re.compile(f"^{first[:8]} .*; {second[:8]} "))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "compare-curves.png"), full_page=True)
    assert (SHOTS / "compare-curves.png").stat().st_size > 5_000


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, list[str]]]:
    """A server on runs recorded straight into the store: all log ``loss`` over STEPS
    steps (run ``r`` in a band of its own), the first three ``acc``, the first two
    ``train/loss``, the fourth alone ``lr``; (url, viewer key, run ids)."""
    tmp = tmp_path_factory.mktemp("curves")
    workspace = Workspace.open(f"sqlite:///{tmp / 'metadata.db'}", artifacts=str(tmp / "art"))
    start_time, ids = utcnow(), []
    for r in range(MANY):
        run = RunRecord(
            new_id(), "curves", "v1", "synthetic:curves", {}, "manual", "test", "host",
            os.getpid(), "succeeded", start_time, ended_at=start_time + timedelta(seconds=1),
        )  # fmt: skip
        workspace.metadata.create_run(run)
        metrics = [MetricRecord(run.id, "loss", r + 0.5 / (1 + s), s) for s in range(STEPS)]
        if r < 3:
            metrics += [
                MetricRecord(run.id, "acc", 0.5 + 0.01 * s * (r + 1), s) for s in range(STEPS)
            ]
        if r < 2:  # a key with a slash, as TensorBoard-style loggers name them
            metrics += [
                MetricRecord(run.id, "train/loss", 1.0 - 0.01 * s * r, s) for s in range(STEPS)
            ]
        if r == 3:
            metrics += [MetricRecord(run.id, "lr", 0.1 / (1 + s), s) for s in range(STEPS)]
        metrics.append(MetricRecord(run.id, "rows", 100.0))  # one value: no curve
        workspace.metadata.log_batch(metrics=metrics)
        ids.append(run.id)
    server, thread, url = start(create_app(workspace))
    try:
        yield url, role_keys(workspace)["viewer"], ids
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()


def test_twenty_runs_and_a_metric_only_some_have(
    browser: Any, many_runs: tuple[str, str, list[str]], watch: Watch
) -> None:
    url, key, ids = many_runs
    context = browser.new_context(base_url=url)
    context.add_cookies([{"name": "ctloop_key", "value": key, "url": url}])
    page = context.new_page()
    watch.attach(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"/compare?runs={','.join(ids)}")
    charts = curves_shown(page)
    # lr: one run only; rows: a single value
    assert sorted(charts) == ["acc", "loss", "train/loss"]
    assert charts["train/loss"].get_attribute("data-lines") == "2"
    assert charts["loss"].get_attribute("data-lines") == str(MANY)
    assert all(n > 30 for n in painted(charts["loss"], list(RUN_COLOURS))), (
        "a run's line is missing"
    )
    assert charts["acc"].get_attribute("data-lines") == "3"
    acc = painted(charts["acc"], list(RUN_COLOURS))
    assert all(n > 30 for n in acc[:3]) and not any(acc[3:]), acc  # same colour per run
    assert page.locator(".compare-curve[data-key=acc] .legend a.run-key").count() == 3
    assert f"not logged by {ids[3][:8]}" in page.inner_text(".compare-curve[data-key=acc] .legend")
    assert "lr" in page.inner_text("#single-curves") and ids[3][:8] in page.inner_text(
        "#single-curves"
    )
    assert page.get_attribute("canvas.overlaid[data-key=loss]", "data-painted") == str(MANY * STEPS)
    context.close()
    assert watch.errors == [] and watch.failed == [] and watch.refused == []


def test_runs_without_shared_curves_say_so(
    browser: Any, many_runs: tuple[str, str, list[str]], watch: Watch
) -> None:
    url, key, ids = many_runs
    context = browser.new_context(base_url=url)
    context.add_cookies([{"name": "ctloop_key", "value": key, "url": url}])
    page = context.new_page()
    watch.attach(page)
    page.goto(f"/compare?runs={ids[3]},{ids[4]}")
    assert page.locator("canvas.overlaid").count() == 1  # loss only
    page.goto(f"/compare?runs={ids[3]},{ids[0]}")
    assert sorted(curves_shown(page)) == ["loss"]
    assert "acc" in page.inner_text("#single-curves") and "lr" in page.inner_text("#single-curves")
    context.close()
    assert watch.errors == [] and watch.failed == [] and watch.refused == []
