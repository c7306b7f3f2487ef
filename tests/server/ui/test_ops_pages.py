"""The operations pages in Chromium, on a workspace with six monitored windows (``signal``
shifted from the fourth on), a deployment with a canary and a shadow, a trigger that
started a run, alerts with their delivery and a data set of two versions: what a user
sees, no console errors, no failed requests, and a screenshot of each page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.ui import conftest
from tests.server.ui.conftest import Watch
from tests.server.ui.ops_fixtures import MODEL, SHIFT_FROM, SHIFTED, OpsServer, ops_server
from tests.server.ui.pages import rows

__all__ = ["ops_server"]

pytestmark = pytest.mark.chromium

#: where the UI tests keep their screenshots (the folder conftest names, if it names one)
SCREENSHOTS = Path(
    getattr(conftest, "SCREENSHOTS", Path(__file__).parents[3] / "build" / "ui-screenshots")
)


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def open_as(browser: Any, ops_server: OpsServer, watch: Watch) -> Iterator[Any]:
    """A function that opens a page signed in with the key of a role."""
    contexts = []

    def opener(role: str) -> Any:
        context = browser.new_context(
            base_url=ops_server.url, viewport={"width": 1280, "height": 900}
        )
        host = ops_server.url.split("//")[1].split(":")[0]
        cookie = {"name": "ctloop_key", "value": ops_server.keys[role], "domain": host}
        context.add_cookies([{**cookie, "path": "/", "httpOnly": True, "sameSite": "Strict"}])
        contexts.append(context)
        page = context.new_page()
        watch.attach(page)
        return page

    yield opener
    for context in contexts:
        context.close()
    assert watch.errors == [], f"console errors: {watch.errors}"
    assert watch.failed == [], f"failed requests: {watch.failed}"
    assert watch.refused == [], f"answers >= 400: {watch.refused}"


def test_deployments_show_primary_canary_share_shadow_and_verdicts(open_as: Any) -> None:
    page = open_as("viewer")
    page.goto("/deployments")
    (prod,) = rows(page, "#deployments")
    assert prod[0] == "flights-prod" and prod[2].startswith("champion → v1 (90 %)")
    assert prod[3].startswith("v2 10 %") and prod[4].startswith("v2")
    (verdict,) = rows(page, "#verdicts")
    assert verdict[2] == "auto-rollback" and verdict[3] == "monitor" and "auc 0.61" in verdict[4]
    history = [r[1] for r in rows(page, "table.history[data-name=flights-prod]")]
    assert history == ["shadow", "canary", "auto-rollback", "canary", "deploy"]
    shoot(page, "deployments")


def test_monitoring_heatmap_marks_the_shifted_feature_and_charts_are_painted(
    open_as: Any, ops_server: OpsServer
) -> None:
    page = open_as("viewer")
    page.goto(f"/monitoring/{MODEL}")
    drifted = page.eval_on_selector_all(
        "#heatmap rect.cell.drifted", "cs => cs.map(c => [c.dataset.feature, +c.dataset.window])"
    )
    assert sorted(drifted) == [[SHIFTED, i] for i in range(SHIFT_FROM, len(ops_server.windows))]
    fills = page.eval_on_selector_all(
        f"#heatmap rect.cell[data-feature={SHIFTED}]", "cs => cs.map(c => c.getAttribute('fill'))"
    )
    assert len(set(fills[SHIFT_FROM:]) & set(fills[:SHIFT_FROM])) == 0  # it stands out
    assert page.locator("#heatmap rect.cell[data-feature=weak].drifted").count() == 0
    assert page.locator("#heatmap path.alert").count() >= 1
    assert page.locator("#heatmap rect.verdict[data-verdict=ok]").count() == SHIFT_FROM
    for chart in ("#performance", "#volume", "#attribution"):
        box = page.locator(f"{chart} svg").bounding_box()
        assert box and box["width"] > 300 and box["height"] > 80, chart
    line = page.get_attribute("#performance path.series", "d") or ""
    assert line.count("L") == len(ops_server.windows) - 1  # one point per labelled window
    assert page.locator("#volume rect.bar").count() == len(ops_server.windows)
    alerted = page.eval_on_selector_all(
        "#heatmap path.alert", "ms => ms.map(m => m.dataset.window)"
    )
    for chart in ("#performance", "#volume"):  # the alerts on the same columns
        marked = page.eval_on_selector_all(
            f"{chart} path.alert", "ms => ms.map(m => m.dataset.window)"
        )
        assert sorted(set(marked)) == sorted(set(alerted)), chart
    assert len(rows(page, "#windows")) == len(ops_server.windows)
    assert len(rows(page, "#model-alerts")) >= 1
    shoot(page, "monitoring")
    page.click(f"#heatmap rect.cell[data-feature={SHIFTED}][data-window='{SHIFT_FROM}']")
    assert "/windows/" in page.url
    assert SHIFTED in page.inner_text("body") and "drift" in page.inner_text("body").lower()
    shoot(page, "monitoring-window")


def test_monitoring_against_the_previous_window_flags_only_the_shift(open_as: Any) -> None:
    page = open_as("viewer")
    page.goto(f"/monitoring/{MODEL}?against=previous")
    drifted = page.eval_on_selector_all(
        f"#heatmap rect.cell.drifted[data-feature={SHIFTED}]",
        "cs => cs.map(c => +c.dataset.window)",
    )
    assert SHIFT_FROM in drifted and 0 not in drifted


def test_triggers_alerts_and_data_pages(open_as: Any, ops_server: OpsServer) -> None:
    page = open_as("viewer")
    page.goto("/triggers")
    shown = {r[0]: r for r in rows(page, "#triggers")}
    declared = ["retrain/drifted", "retrain/nightly", "retrain/new-events", "retrain/by-hand"]
    assert list(shown) == [*declared, "old/gone"]  # declaration order, then the stored rest
    drifted, nightly = shown["retrain/drifted"], shown["retrain/nightly"]
    assert "monitor flights on ['drift', 'degraded']" in drifted[3]
    assert drifted[4] == "monitoring job every 2h" and drifted[8] == "1 succeeded"
    assert drifted[9] == ops_server.training_run[:8] and "in 1h " in drifted[6]
    assert nightly[4].startswith("cron 0 3 * * * (UTC)") and "cool-down 6.0h" in nightly[4]
    assert nightly[6].split()[1] == "03:00" and nightly[8] == "none"
    never = shown["retrain/new-events"]  # declared, never evaluated: shown all the same
    assert never[5] == "never" and never[6] == "each scheduler tick"
    assert never[3] == "incoming/*.csv"
    assert shown["retrain/by-hand"][6] == "on demand"
    assert shown["old/gone"][4] == "not declared"
    (firing,) = rows(page, "#firings")
    assert firing[1] == "retrain/drifted" and firing[2] == "succeeded"
    assert firing[4] == ops_server.training_run[:8]
    shoot(page, "triggers")
    page.click(f"#firings a[href='/runs/{ops_server.training_run}']")
    assert page.url.endswith(f"/runs/{ops_server.training_run}")

    page.goto("/alerts")
    shown = rows(page, "#alerts")
    assert len(shown) >= 2 and all(r[2] == MODEL for r in shown)
    assert any(f"drift in '{SHIFTED}'" in r[4] for r in shown)
    states = page.eval_on_selector_all(
        "#alerts td.delivery", "ds => ds.map(d => d.dataset.sink + ' ' + d.innerText.trim())"
    )
    assert any(s.startswith("slack sent") for s in states)
    assert any(s.startswith("webhook failed") and "HTTP 503" in s for s in states)
    shoot(page, "alerts")

    page.goto("/data")
    versions = rows(page, "table.data-versions[data-name=events]")
    assert [r[0] for r in versions] == ["events@2", "events@1"]
    for row, version in zip(versions, (2, 1), strict=True):
        assert ops_server.data_runs[version][:8] in row[7]
    shoot(page, "data")


def test_an_admin_creates_a_key_seen_once_and_revokes_it(
    open_as: Any, ops_server: OpsServer
) -> None:
    page = open_as("admin")
    page.goto("/keys")
    page.fill("#create-key input[name=name]", "ci-bot")
    page.select_option("#create-key select[name=role]", "editor")
    page.click("#create-key button")
    secret = page.inner_text("#secret")
    assert secret.startswith("ctl_")
    created = ops_server.workspace.keys.find(secret)
    assert created is not None and created.role == "editor" and created.created_by == "admin-key"
    shoot(page, "keys")
    page.goto("/keys")
    assert secret not in page.content()  # shown once
    page.click(f"tr[data-key='{created.id}'] form.revoke button")
    assert "is revoked" in page.inner_text("#notice")
    assert page.locator(f"tr[data-key='{created.id}'] form.revoke").count() == 0
    assert ops_server.workspace.keys.find(secret).revoked_at is not None  # type: ignore[union-attr]
    actions = [(e.action, e.actor) for e in ops_server.workspace.audit.list(limit=10)]
    assert ("key.create", "admin-key") in actions and ("key.revoke", "admin-key") in actions


def test_a_viewer_gets_403_for_keys_and_cannot_post(
    open_as: Any, ops_server: OpsServer, watch: Watch
) -> None:
    page = open_as("viewer")
    answer = page.goto("/keys")
    assert answer.status == 403 and "needs the admin role" in page.inner_text("p.error")
    assert page.locator("#create-key").count() == 0
    token = page.get_attribute("nav input[name=csrf]", "value") or ""
    posted = page.request.post("/keys", form={"name": "sneaky", "role": "admin", "csrf": token})
    assert posted.status == 403
    assert all(k.name != "sneaky" for k in ops_server.workspace.keys.list())
    watch.refused.clear()
