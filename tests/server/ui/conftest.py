"""The web UI in a real browser: the team server on a SQLite workspace filled by a small
pipeline (and a registered model), Debian's Chromium driven by Playwright — one browser
for the session, a fresh context (cookies) per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctloop import StepError
from ctloop.server import create_app
from ctloop.store.workspace import Workspace
from tests.pipeline.sample_pipelines import regression
from tests.server.conftest import role_keys, start

CHROMIUM = "/usr/bin/chromium"
MODEL = "curve"


@dataclass
class UiServer:
    """The running server, its workspace, a key per role and what the pipeline made."""

    url: str
    workspace: Workspace
    keys: dict[str, str]
    runs: dict[int, str]  # degree -> run id
    failed_run: str
    long_run: str  # a synthetic run of LONG_STEPS steps
    artifacts: dict[str, str]  # kind -> id of an artifact of each viewer's kind


LONG_STEPS = 500


def long_pipeline(workspace: Workspace, steps: int) -> str:
    """A run of ``steps`` steps recorded straight into the store: step ``i`` reads the
    output of step ``i - 1`` and the table of step 0 (so that table has ``steps - 1``
    readers); the run's id."""
    import os
    from datetime import timedelta

    from ctloop.store.records import (
        ArtifactRecord,
        EventRecord,
        ExecutionRecord,
        RunRecord,
        new_id,
        utcnow,
    )

    meta, start = workspace.metadata, utcnow()
    run = RunRecord(
        new_id(),
        "long",
        "v1",
        "synthetic:long",
        {},
        "manual",
        "test",
        "host",
        os.getpid(),
        "succeeded",
        start,
        ended_at=start + timedelta(seconds=steps),
    )
    meta.create_run(run)
    artifacts, events, previous = [], [], None
    for i in range(steps):
        execution = ExecutionRecord(
            new_id(),
            run.id,
            f"step_{i:03d}",
            "f",
            "c",
            f"k{i}",
            "succeeded",
            started_at=start,
            ended_at=start,
        )
        meta.create_execution(execution)
        out = ArtifactRecord(
            new_id(), "Dataset" if i == 0 else "Metrics", "m", "1", new_id(), f"mem://{i}", 10, ()
        )
        artifacts.append(out)
        if previous is not None:
            events.append(EventRecord(execution.id, previous.id, "input", "previous"))
        if i > 1:
            events.append(EventRecord(execution.id, artifacts[0].id, "input", "table"))
        events.append(EventRecord(execution.id, out.id, "output", "output"))
        previous = out
    meta.put_artifacts(artifacts)
    meta.add_events(events)
    return run.id


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    tmp: Path = tmp_path_factory.mktemp("ui")
    workspace = Workspace.open(f"sqlite:///{tmp / 'metadata.db'}", artifacts=str(tmp / "art"))
    data = tmp / "data.csv"
    x = np.linspace(-3, 3, 80)
    pd.DataFrame({"x": x, "y": x**2 + 0.5}).to_csv(data, index=False)
    runs = {d: regression.run(workspace=workspace, path=str(data), degree=d).run_id for d in (1, 2)}
    with pytest.raises(StepError) as failed:  # a negative degree: the fit step raises
        regression.run(workspace=workspace, path=str(data), degree=-1)
    _register(workspace, runs)
    long_run = long_pipeline(workspace, LONG_STEPS)
    made = artifacts_of_each_kind(workspace, tmp)
    server, thread, url = start(create_app(workspace))
    try:
        keys = role_keys(workspace)
        yield UiServer(url, workspace, keys, runs, str(failed.value.run_id), long_run, made)
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()


def artifacts_of_each_kind(workspace: Workspace, tmp: Path) -> dict[str, str]:
    """One artifact per viewer: a table, its statistics, anomalies, a drift report where
    ``dep_delay`` shifted, an evaluation with a slice, a model and an HTML report."""
    from sklearn.linear_model import LinearRegression

    from ctloop.artifacts import save_value
    from ctloop.artifacts.model import Model
    from ctloop.data import compute_statistics, detect_drift, infer_schema, validate
    from ctloop.evaluate import Evaluation, SliceResult

    rng = np.random.default_rng(0)
    before = pd.DataFrame(
        {"carrier": rng.choice(["UA", "AA"], 400), "dep_delay": rng.normal(0, 1, 400)}
    )
    after = before.assign(dep_delay=before["dep_delay"] + 3, carrier=before["carrier"])
    statistics = compute_statistics(before)
    broken = after.assign(dep_delay=after["dep_delay"].astype(str))
    model = Model.from_estimator(
        LinearRegression().fit(before[["dep_delay"]], before["dep_delay"] * 2),
        before[["dep_delay"]],
    )
    evaluation = Evaluation(
        "regression",
        "y",
        400,
        {"mae": 0.25, "rmse": 0.5},
        slices={
            "carrier": (SliceResult("UA", 210, {"mae": 0.2}), SliceResult("AA", 190, {"mae": 0.3}))
        },
    )
    report = tmp / "report.html"
    report.write_text("<!DOCTYPE html><html><body><h1 id=r>Backtest report</h1></body></html>")
    values = {
        "table": before,
        "statistics": statistics,
        "anomalies": validate(broken, infer_schema(statistics)),
        "drift": detect_drift(before, after),
        "evaluation": evaluation,
        "model": model,
        "report": report,
    }
    found = {}
    for kind, value in values.items():
        record = save_value(value, workspace.artifacts, staging_root=tmp)
        workspace.metadata.put_artifacts([record])
        found[kind] = record.id
    return found


def _register(workspace: Workspace, runs: dict[int, str]) -> None:
    """Versions 1 and 2 of MODEL from the fit steps' outputs; champion at v1."""
    for degree in (1, 2):
        fit = next(e for e in workspace.metadata.list_executions(runs[degree]) if e.step == "fit")
        out = next(e for e in workspace.metadata.events_of_execution(fit.id) if e.kind == "output")
        workspace.registry.register_version(MODEL, out.artifact_id, run_id=runs[degree])
    workspace.registry.set_alias(MODEL, "champion", 1, by="setup", reason="first model")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (Debian's; nothing is downloaded)."""
    from playwright.sync_api import sync_playwright

    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium package (make test does)")
    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield found
        found.close()


@dataclass
class Watch:
    """What went wrong in a page: console errors, failed requests, answers >= 400."""

    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", self._failed)
        page.on(
            "response", lambda r: r.status >= 400 and self.refused.append(f"{r.status} {r.url}")
        )

    def _failed(self, request: Any) -> None:
        # a page load the browser gave up for the next one (a redirect or a click landing
        # first, on a busy machine) is net::ERR_ABORTED; any other failure counts
        if request.is_navigation_request() and "ERR_ABORTED" in (request.failure or ""):
            return
        # so is a live page's poll still under way when the test moves to another page
        polls = ("started_after=", "/runs?status=running")
        if "ERR_ABORTED" in (request.failure or "") and any(p in request.url for p in polls):
            return
        self.failed.append(f"{request.method} {request.url} {request.failure}")

    def _console(self, message: Any) -> None:
        # an answer >= 400 is logged as "Failed to load resource"; ``refused`` holds those
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def signed_in(browser: Any, ui_server: UiServer, watch: Watch) -> Iterator[Any]:
    """A function that opens a page signed in with the key of a role."""
    contexts = []

    def open_as(role: str) -> Any:
        context = browser.new_context(base_url=ui_server.url)
        host = ui_server.url.split("//")[1].split(":")[0]
        context.add_cookies(
            [
                {
                    "name": "ctloop_key",
                    "value": ui_server.keys[role],
                    "domain": host,
                    "path": "/",
                    "httpOnly": True,
                    "sameSite": "Strict",
                }
            ]
        )
        contexts.append(context)
        page = context.new_page()
        watch.attach(page)
        return page

    yield open_as
    for context in contexts:
        context.close()
    assert watch.errors == [], f"console errors: {watch.errors}"
    assert watch.failed == [], f"failed requests: {watch.failed}"
    assert watch.refused == [], f"answers >= 400: {watch.refused}"
