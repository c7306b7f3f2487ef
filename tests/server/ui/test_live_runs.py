"""Running runs kept live in Chromium: the runs table and the run page follow a run that a
pipeline process moves on in the store (its steps, then its end) without a reload, with
one API request a tick, and stop polling once nothing they show is running."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ctloop.server import create_app
from ctloop.store.records import ExecutionRecord, RunRecord, new_id, utcnow
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
    page.goto("/runs")
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
    page.goto("/runs?status=succeeded")
    page.wait_for_timeout(2500)
    assert calls == [] and page.evaluate("document.body.dataset.live") is None
