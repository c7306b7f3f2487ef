"""The runs page in Chromium on 10,000 runs × 50 metrics: paging through them, sorting by a
metric and filtering on metric conditions, each answered by the server, with what the
page shows checked against the runs' known values (see ``many_runs``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ctloop.server import create_app
from ctloop.store.workspace import Workspace
from tests.server.conftest import role_keys, start
from tests.server.ui.conftest import Watch
from tests.server.ui.many_runs import METRICS, RUNS, many_runs_workspace, metric, run_id
from tests.server.ui.pages import rows, submit
from tests.server.ui.test_ops_pages import shoot

pytestmark = pytest.mark.chromium

PAGE = 50


@dataclass
class Many:
    url: str
    workspace: Workspace
    key: str


@pytest.fixture(scope="session")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Many]:
    folder: Path = tmp_path_factory.mktemp("many-runs")
    workspace = many_runs_workspace(folder)
    server, thread, url = start(create_app(workspace))
    try:
        yield Many(url, workspace, role_keys(workspace)["viewer"])
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()


@pytest.fixture
def page(browser: Any, many: Many, watch: Watch) -> Iterator[Any]:
    context = browser.new_context(base_url=many.url, viewport={"width": 1400, "height": 900})
    host = many.url.split("//")[1].split(":")[0]
    cookie = {"name": "ctloop_key", "value": many.key, "domain": host}
    context.add_cookies([{**cookie, "path": "/", "httpOnly": True, "sameSite": "Strict"}])
    opened = context.new_page()
    watch.attach(opened)
    yield opened
    context.close()
    assert watch.errors == [], f"console errors: {watch.errors}"
    assert watch.failed == [], f"failed requests: {watch.failed}"
    assert watch.refused == [], f"answers >= 400: {watch.refused}"


def shown_ids(page: Any) -> list[str]:
    return [r[1] for r in rows(page, "#runs")]


def column(page: Any, name: str) -> list[float]:
    """The values of the metric column ``name`` as the table shows them."""
    headers = page.eval_on_selector_all("#runs th", "hs => hs.map(h => h.innerText.trim())")
    at = [h.rstrip(" ▲▼") for h in headers].index(name)
    return [float(r[at]) for r in rows(page, "#runs")]


def test_pages_through_ten_thousand_runs_newest_first(page: Any) -> None:
    page.goto("/runs")
    # unfiltered, the page does not count all runs (that would cost more than the page)
    assert page.inner_text("#run-count") == f"the newest {PAGE} runs and more"
    assert shown_ids(page) == [run_id(n)[:8] for n in range(RUNS - 1, RUNS - 1 - PAGE, -1)]
    submit(page, "a[rel=next]")
    assert "page=2" in page.url and "page 2" in page.inner_text(".pager")
    assert shown_ids(page) == [
        run_id(n)[:8] for n in range(RUNS - 1 - PAGE, RUNS - 1 - 2 * PAGE, -1)
    ]
    page.goto(f"/runs?page={RUNS // PAGE}")
    assert shown_ids(page) == [run_id(n)[:8] for n in range(PAGE - 1, -1, -1)]
    assert page.locator("a[rel=next]").count() == 0
    page.goto("/runs?pipeline=pipeline_3&page=3")
    newest = [n for n in range(RUNS - 1, -1, -1) if n % 5 == 3]
    assert shown_ids(page) == [run_id(n)[:8] for n in newest[2 * PAGE : 3 * PAGE]]


def test_sorts_all_runs_by_a_metric_both_ways(page: Any) -> None:
    values = sorted(metric(n, 7) for n in range(RUNS))
    page.goto("/runs?columns=m3,m7")
    assert page.locator("#runs th").count() == 7 + 2
    submit(page, "#runs th a:text-is('m7')")
    assert "sort=metrics.m7" in page.url
    assert column(page, "m7") == pytest.approx(values[:PAGE])
    submit(page, "#runs th a:has-text('m7')")  # again: the other way
    assert "sort=-metrics.m7" in page.url
    assert column(page, "m7") == pytest.approx(values[::-1][:PAGE])
    submit(page, "a[rel=next]")  # the order holds across pages
    assert column(page, "m7") == pytest.approx(values[::-1][PAGE : 2 * PAGE])
    shoot(page, "runs-10k-sorted")


def test_filters_on_metric_and_parameter_conditions(page: Any) -> None:
    matching = [n for n in range(RUNS) if metric(n, 0) >= 0.995 and n % 3 == 0]
    assert 0 < len(matching) < PAGE  # the filter keeps a few runs of the 10,000
    page.goto("/runs")
    page.fill("input[name=where]", "m0 >= 0.995 and params.fold = 0")
    page.fill("input[name=columns]", f"m0, m{METRICS - 1}")
    submit(page, "form.filters button[type=submit]")
    assert page.inner_text("#run-count") == f"{len(matching)} runs"
    assert shown_ids(page) == [run_id(n)[:8] for n in reversed(matching)]
    assert column(page, "m0") == pytest.approx([metric(n, 0) for n in reversed(matching)])
    assert column(page, f"m{METRICS - 1}") == pytest.approx(
        [metric(n, METRICS - 1) for n in reversed(matching)], abs=5e-4
    )
