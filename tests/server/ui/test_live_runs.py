"""Running runs kept live in Chromium: the runs table and the run page follow a run that a
pipeline process moves on in the store (its steps, then its end) without a reload, with
one API request a tick for all of them, and stop polling once nothing they show can
change; the first page of the newest runs shows a run started after it loaded (if it
passes the page's filters and conditions), drawn as the server draws it, with one more
request a tick, and polls nothing while the tab is hidden."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ctloop.server import create_app
from ctloop.store.records import ExecutionRecord, MetricRecord, RunRecord, new_id, utcnow
from ctloop.store.workspace import Workspace
from tests.server.conftest import role_keys, start
from tests.server.ui.conftest import Watch
from tests.server.ui.test_ops_pages import shoot

pytestmark = pytest.mark.chromium

STEPS = ("load", "fit", "report")


@dataclass
class Live:
    url: str
    workspace: Workspace
    keys: dict[str, str]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("live")
    workspace = Workspace.open(f"sqlite:///{tmp / 'metadata.db'}", artifacts=str(tmp / "art"))
    server, thread, url = start(create_app(workspace))
    try:
        yield Live(url, workspace, role_keys(workspace))
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()


def running_run(workspace: Workspace, pipeline: str) -> tuple[str, dict[str, str]]:
    """A run whose first step succeeded, second runs and third waits; its id and its
    executions' ids by step."""
    now = utcnow()
    run = RunRecord(
        new_id(), pipeline, "v1", "live.py:p", {}, "manual", "test", socket.gethostname(),
        os.getpid(), "running", now, heartbeat_at=now,
    )  # fmt: skip
    workspace.metadata.create_run(run)
    ids = {}
    for step, status in zip(STEPS, ("succeeded", "running", "pending"), strict=True):
        execution = ExecutionRecord(
            new_id(), run.id, step, "f", "c", f"k-{step}", status,
            started_at=now if status != "pending" else None,
            ended_at=now if status == "succeeded" else None,
        )  # fmt: skip
        workspace.metadata.create_execution(execution)
        ids[step] = execution.id
    return run.id, ids


def finish(workspace: Workspace, run_id: str, executions: dict[str, str]) -> None:
    for step in ("fit", "report"):
        workspace.metadata.update_execution(executions[step], status="succeeded", ended_at=utcnow())
    workspace.metadata.update_run(run_id, status="succeeded", ended_at=utcnow())


@pytest.fixture
def page(browser: Any, live: Live, watch: Watch) -> Iterator[Any]:
    context = browser.new_context(base_url=live.url)
    host = live.url.split("//")[1].split(":")[0]
    cookie = {"name": "ctloop_key", "value": live.keys["viewer"], "domain": host}
    context.add_cookies([{**cookie, "path": "/", "httpOnly": True, "sameSite": "Strict"}])
    opened = context.new_page()
    watch.attach(opened)
    yield opened
    context.close()
    assert watch.errors == [], f"console errors: {watch.errors}"
    assert watch.failed == [], f"failed requests: {watch.failed}"
    assert watch.refused == [], f"answers >= 400: {watch.refused}"


def api_calls(page: Any) -> list[str]:
    calls: list[str] = []
    page.on("request", lambda r: "/api/v1/" in r.url and calls.append(r.url))
    return calls


def test_the_runs_table_follows_a_running_run_to_its_end(page: Any, live: Live) -> None:
    run_id, executions = running_run(live.workspace, "table")
    calls = api_calls(page)
    page.goto("/runs?sort=started_at")  # oldest first: no new run can join this page
    row = f"#runs tr[data-run='{run_id}']"
    assert page.get_attribute(row, "data-status") == "running"
    assert page.is_visible("#live")
    page.evaluate("window.notReloaded = true")
    page.wait_for_function("document.body.dataset.live === 'polling'")
    page.wait_for_timeout(
        2500
    )  # a tick or two while it runs: one request each, for all running runs
    assert calls and all("/api/v1/runs?status=running" in c for c in calls)
    finish(live.workspace, run_id, executions)
    page.wait_for_selector(f"{row}[data-status=succeeded]", timeout=10_000)
    assert page.inner_text(f"{row} .badge") == "succeeded"
    assert page.evaluate("window.notReloaded") is True
    page.wait_for_function("document.body.dataset.live === 'done'")
    assert not page.is_visible("#live")
    seen = len(calls)
    page.wait_for_timeout(2500)  # more than a tick: nothing is running, nothing is asked
    assert len(calls) == seen


def test_the_run_page_moves_its_steps_and_says_when_the_run_ended(page: Any, live: Live) -> None:
    run_id, executions = running_run(live.workspace, "page")
    calls = api_calls(page)
    page.goto(f"/runs/{run_id}")
    assert page.get_attribute("#dag g.node[data-step=fit]", "class") == "node running"
    assert page.is_hidden("#live-note")
    page.evaluate("window.notReloaded = true")
    live.workspace.metadata.update_execution(
        executions["fit"], status="succeeded", ended_at=utcnow()
    )
    live.workspace.metadata.update_execution(executions["report"], status="running")
    page.wait_for_selector("#dag g.node.succeeded[data-step=fit]", timeout=10_000)
    assert page.text_content("#dag g.node[data-step=report] text.muted") == "running"
    assert page.inner_text("#run-status .badge") == "running" and page.is_hidden("#live-note")
    shoot(page, "run-live")
    finish(live.workspace, run_id, executions)
    page.wait_for_selector("#run-status[data-status=succeeded]", timeout=10_000)
    assert page.inner_text("#run-status .badge") == "succeeded"
    assert "The run succeeded" in page.inner_text("#live-note")
    assert page.get_attribute("#dag g.node[data-step=report]", "class") == "node succeeded"
    assert page.evaluate("window.notReloaded") is True
    page.wait_for_function("document.body.dataset.live === 'done'")
    assert set(calls) == {f"{live.url}/api/v1/runs/{run_id}"}
    seen = len(calls)
    page.wait_for_timeout(2500)
    assert len(calls) == seen


def test_a_finished_run_is_not_polled(page: Any, live: Live) -> None:
    run_id, executions = running_run(live.workspace, "done")
    finish(live.workspace, run_id, executions)
    calls = api_calls(page)
    page.goto(f"/runs/{run_id}")
    page.goto("/runs?status=succeeded&sort=pipeline")
    page.goto("/runs?status=succeeded&page=2")
    page.wait_for_timeout(2500)
    assert calls == [] and page.evaluate("document.body.dataset.live") is None


def new_run(workspace: Workspace, pipeline: str, auc: float, **changes: Any) -> str:
    """A run started now with an ``auc`` and parameters ``lr`` and ``layers``; its id."""
    now = utcnow()
    run = RunRecord(
        new_id(), pipeline, "v1", "live.py:p", {"lr": 0.25, "layers": [2, 3]}, "manual",
        "test", socket.gethostname(), os.getpid(), "succeeded", now,
        ended_at=now + timedelta(seconds=1.5),
    )  # fmt: skip
    run = replace(run, **changes)
    workspace.metadata.create_run(run)
    workspace.metadata.log_batch(metrics=[MetricRecord(run.id, "auc", auc)])
    return run.id


def test_a_run_started_after_the_page_loaded_appears_if_it_passes_the_filters(
    page: Any, live: Live
) -> None:
    first = new_run(live.workspace, "fresh", 0.9)
    calls = api_calls(page)
    query = "/runs?pipeline=fresh&where=auc+%3E+0.5&columns=auc&params=lr,layers"
    page.goto(query)
    assert page.locator("#runs tbody tr[data-run]").count() == 1
    assert page.is_visible("#live-new") and page.is_hidden("#live")
    page.evaluate("window.notReloaded = true")
    page.wait_for_function("document.body.dataset.live === 'polling'")
    passing = new_run(live.workspace, "fresh", 0.812345)
    new_run(live.workspace, "fresh", 0.3)  # fails the condition
    new_run(live.workspace, "elsewhere", 0.95)  # another pipeline
    row = f"#runs tr[data-run='{passing}']"
    page.wait_for_selector(row, timeout=10_000)
    page.wait_for_timeout(2500)  # a tick more: nothing else joins
    ids = [r.get_attribute("data-run") for r in page.locator("#runs tbody tr").all()]
    assert ids == [passing, first]
    assert page.evaluate("window.notReloaded") is True
    assert page.inner_text("#run-count") == "2 runs"
    drawn = page.inner_text(row)
    cells = drawn.split("\t")  # pipeline, status, trigger, started, duration, params, metrics
    assert cells[2:5] == ["fresh", "succeeded", "manual"] and len(cells[5]) == 19
    assert cells[6:] == ["1.5 s", "0.25", "[2, 3]", "0.8123"]
    searches = [c for c in calls if "/api/v1/runs/search" in c]
    assert searches and all("started_after=" in c and "pipeline=fresh" in c for c in searches)
    assert set(calls) == set(searches)  # nothing is running: the search alone, once a tick
    page.goto(query)  # the server draws the row the same way
    assert page.inner_text(row) == drawn


def test_a_hidden_tab_polls_nothing_and_catches_up_when_shown(page: Any, live: Live) -> None:
    new_run(live.workspace, "hidden", 0.9)
    calls = api_calls(page)
    page.goto("/runs?pipeline=hidden")
    page.wait_for_function("document.body.dataset.live === 'polling'")
    set_hidden = (
        "hidden => { Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    page.evaluate(set_hidden, True)
    assert page.evaluate("document.body.dataset.live") == "paused"
    seen = len(calls)
    started = new_run(live.workspace, "hidden", 0.7)
    page.wait_for_timeout(2500)  # more than a tick
    assert len(calls) == seen and page.locator(f"tr[data-run='{started}']").count() == 0
    page.evaluate(set_hidden, False)
    page.wait_for_selector(f"tr[data-run='{started}']", timeout=1500)  # at once, not a tick later
    assert page.evaluate("document.body.dataset.live") == "polling"
