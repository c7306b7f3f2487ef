"""What a user sees in the web UI, in Chromium: sign in, runs, one run, a comparison,
the registry; no console errors and no failed requests on any page."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.server.ui.conftest import MODEL, UiServer, Watch
from tests.server.ui.pages import rows, submit

pytestmark = pytest.mark.chromium


def test_signing_in_keeps_the_key_in_a_strict_http_only_cookie(
    browser: Any, ui_server: UiServer, watch: Watch
) -> None:
    context = browser.new_context(base_url=ui_server.url)
    page = context.new_page()
    watch.attach(page)
    page.goto("/")
    assert page.url.startswith(f"{ui_server.url}/login?next=/runs")
    page.fill("input[name=key]", "ctl_not-a-key")
    page.click("button[type=submit]")
    assert "not known to this server" in page.inner_text("p.error")
    page.fill("input[name=key]", ui_server.keys["viewer"])
    page.click("button[type=submit]")
    assert page.url == f"{ui_server.url}/runs"
    (cookie,) = context.cookies()
    assert cookie["name"] == "ctloop_key" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the key
    assert "viewer-key (viewer)" in page.inner_text("nav")
    page.click("text=sign out")
    assert page.url.startswith(f"{ui_server.url}/login") and context.cookies() == []
    context.close()
    assert watch.errors == [] and watch.failed == []
    assert watch.refused == [f"401 {ui_server.url}/login"]  # the wrong key, and only it


def test_runs_table_filters_sorts_and_pages_on_the_server(
    signed_in: Any, ui_server: UiServer
) -> None:
    page = signed_in("viewer")
    page.goto("/runs?columns=mse&pipeline=regression")
    shown = rows(page, "#runs")
    assert len(shown) == 3 and page.inner_text("#run-count") == "3 runs"
    assert {r[2] for r in shown} == {"regression"}
    assert sorted(r[3] for r in shown) == ["failed", "succeeded", "succeeded"]
    page.fill("input[name=where]", "mse > 0.5")
    submit(page, "form.filters button")
    (only,) = rows(page, "#runs")
    assert only[1] == ui_server.runs[1][:8] and float(only[7]) > 0.5
    page.goto("/runs?columns=mse&sort=metrics.mse&pipeline=regression")
    ordered = [r[1] for r in rows(page, "#runs")]
    assert ordered[:2] == [ui_server.runs[2][:8], ui_server.runs[1][:8]]  # failed run: no mse
    page.select_option("select[name=status]", "failed")
    submit(page, "form.filters button")
    assert [r[1] for r in rows(page, "#runs")] == [ui_server.failed_run[:8]]


def test_a_bad_condition_is_a_sentence_above_the_table(signed_in: Any) -> None:
    page = signed_in("viewer")
    page.goto("/runs?where=mse+is+big&pipeline=regression")
    assert "cannot read the condition 'mse is big'" in page.inner_text("p.error")
    assert len(rows(page, "#runs")) == 3


def test_run_page_draws_the_step_graph_and_paints_the_metric_chart(
    signed_in: Any, ui_server: UiServer
) -> None:
    page = signed_in("viewer")
    page.goto(f"/runs/{ui_server.runs[2]}")
    nodes = page.eval_on_selector_all("#dag g.node", "gs => gs.map(g => g.dataset.step)")
    assert nodes == ["load", "split", "fit", "score"]
    assert page.locator("#dag path").count() == 4  # load→split, split→fit, split→score, fit→score
    boxes = page.eval_on_selector_all("#dag rect", "rs => rs.map(r => r.getBBox().x)")
    assert boxes == sorted(boxes) and len(set(boxes)) == 4  # one column per step here
    chart = page.locator("canvas.metric-chart").first
    assert chart.get_attribute("data-title") == "mse" and chart.get_attribute("data-painted") == "3"
    blue = chart.evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 0; i < d.length; i += 4)"
        " if (d[i] === 31 && d[i+1] === 111 && d[i+2] === 209) n++; return n; }"
    )
    assert blue > 100, "the chart's line was not painted"
    assert page.locator("#step-panel").is_hidden()
    page.click("#dag g[data-step=fit]")
    assert page.url.endswith("#step-fit")
    panel = page.locator("#step-panel[data-step=fit]")
    assert "degree" in panel.inner_text() and "mse" not in panel.inner_text()
    page.click("#dag g[data-step=score]")
    page.wait_for_selector("#step-panel[data-step=score] .step-events table")
    assert "mse" in page.inner_text("#step-panel .step-metrics")
    outputs = page.eval_on_selector_all(
        "#step-panel .step-events tr",
        "rs => rs.map(r => r.cells[0].innerText + r.cells[1].innerText)",
    )
    assert "incoef" in outputs and "intest" in outputs
    page.click("#dag g[data-step=load]")
    assert "cached from" in page.inner_text("#step-panel")  # the first run loaded the data


def test_a_step_shows_its_log_tail(signed_in: Any, ui_server: UiServer) -> None:
    page = signed_in("viewer")
    page.goto(f"/runs/{ui_server.runs[1]}#step-load")
    page.wait_for_selector("#step-panel[data-loaded] .step-log pre.log")
    assert "loading " in page.inner_text("#step-panel .step-log")


def test_failed_run_shows_the_traceback_of_its_step(signed_in: Any, ui_server: UiServer) -> None:
    page = signed_in("viewer")
    page.goto(f"/runs/{ui_server.failed_run}")
    assert page.locator("#dag g.node.failed").count() == 1
    page.click("#dag g.node.failed")
    assert "Traceback" in page.inner_text("#step-panel .step-error")
    assert page.locator("#resume").count() == 0  # a viewer cannot resume


def test_an_editor_resumes_a_failed_run_and_only_the_failed_step_runs_again(
    signed_in: Any, ui_server: UiServer
) -> None:
    page = signed_in("editor")
    page.goto(f"/runs/{ui_server.failed_run}")
    page.click("#resume button")
    assert page.inner_text("#notice").startswith("resuming")
    store = ui_server.workspace.metadata
    for _ in range(100):  # the resume runs on the server; it fails again (degree -1)
        run = store.get_run(ui_server.failed_run)
        if run.status == "failed" and run.ended_at is not None:
            attempts = [e.step for e in store.list_executions(run.id) if e.attempt > 1]
            if attempts:
                break
        page.wait_for_timeout(100)
    assert attempts == ["fit"]
    assert any(e.action == "run.resume" for e in ui_server.workspace.audit.list(limit=20))
    page.goto(f"/runs/{ui_server.failed_run}")
    assert page.locator("#dag g.node").count() == 4  # a step once, by its latest attempt


def test_parameter_columns_and_conditions(signed_in: Any, ui_server: UiServer) -> None:
    page = signed_in("viewer")
    page.goto("/runs?params=degree&sort=-params.degree")
    assert [r[7] for r in rows(page, "#runs")] == ["2", "1", "-1", ""]  # no degree: last
    page.fill("input[name=where]", "params.degree >= 1 and mse < 0.5")
    submit(page, "form.filters button")
    (only,) = rows(page, "#runs")
    assert only[1] == ui_server.runs[2][:8] and only[7] == "2" and float(only[8]) < 0.5
    page.goto("/runs?user=nobody")
    assert rows(page, "#runs")[0][0] == "No runs match."


def test_compare_marks_the_parameters_that_differ(signed_in: Any, ui_server: UiServer) -> None:
    page = signed_in("viewer")
    page.goto("/runs")
    for run in ui_server.runs.values():
        page.check(f"input[value='{run}']")
    submit(page, "text=Compare selected")
    assert page.url.startswith(f"{ui_server.url}/compare?runs=")
    differing = page.eval_on_selector_all(
        "#compare tr.diff", "rs => rs.map(r => r.cells[0].innerText)"
    )
    assert "degree" in differing and "score/mse" in differing
    page.goto(f"/compare?runs={ui_server.runs[1]},{ui_server.runs[2]}")
    assert page.locator("#compare thead th").count() == 3


def test_a_viewer_sees_no_promote_button_and_a_post_is_refused(
    signed_in: Any, ui_server: UiServer, watch: Watch
) -> None:
    page = signed_in("viewer")
    page.goto(f"/models/{MODEL}")
    assert rows(page, "#versions")[0][0] == "v2"
    assert page.locator("#promote").count() == 0 and page.locator("text=Promote").count() == 0
    token = page.get_attribute("nav input[name=csrf]", "value")
    answer = page.request.post(
        f"/models/{MODEL}/aliases",
        form={"alias": "champion", "version": "2", "reason": "sneaky", "csrf": token or ""},
    )
    assert answer.status == 403 and "needs the admin role" in answer.text()
    assert ui_server.workspace.registry.get_model(MODEL).aliases["champion"] == 1
    watch.refused.clear()


def test_an_admin_promotes_with_a_reason_and_the_history_shows_it(
    signed_in: Any, ui_server: UiServer
) -> None:
    page = signed_in("admin")
    page.goto("/models")
    assert rows(page, "#models")[0][0] == MODEL
    page.click(f"text={MODEL}")
    assert "Model card" in page.inner_text("main")
    page.select_option("#promote select[name=version]", "2")
    page.fill("#promote input[name=reason]", "lower mse <on the held-out rows>")
    page.click("#promote button[value=promote]")
    assert page.inner_text("#notice") == "champion now points at v2"
    latest = rows(page, "#history")[0]
    assert latest[1:5] == ["champion", "v1", "v2", "admin-key"]
    assert latest[6] == "lower mse <on the held-out rows>"
    audit = ui_server.workspace.audit.list(limit=5)
    assert any(e.action == "alias.set" and e.actor == "admin-key" for e in audit)
    page.fill("#promote input[name=reason]", "back to the first")
    page.click("#promote button[value=rollback]")
    assert page.inner_text("#notice") == "champion rolled back to v1"
    assert re.match(r"v1", rows(page, "#history")[0][3])


def test_a_form_without_the_token_is_refused(signed_in: Any, watch: Watch) -> None:
    page = signed_in("admin")
    page.goto(f"/models/{MODEL}")
    answer = page.request.post(
        f"/models/{MODEL}/aliases", form={"alias": "champion", "version": "2", "reason": "x"}
    )
    assert answer.status == 403 and "security token" in answer.text()
    watch.refused.clear()
