"""The artifact page in Chromium: each type's viewer shows what a user came for, and a
stored HTML report is framed with no script and no way out."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.server.ui.conftest import UiServer, Watch
from tests.server.ui.test_pages import rows

pytestmark = pytest.mark.chromium


def test_a_table_shows_its_first_rows_and_schema(signed_in: Any, ui_server: UiServer) -> None:
    page = signed_in("viewer")
    page.goto(f"/artifacts/{ui_server.artifacts['table']}")
    assert page.get_attribute("#viewer", "data-kind") == "table"
    assert "first 20 of 400 rows" in page.inner_text("#viewer h2")
    assert len(rows(page, "#preview")) == 20
    assert rows(page, "table.schema") == [
        ["carrier", "large_string", "yes"],
        ["dep_delay", "double", "yes"],
    ]
    link = page.get_attribute("#files a", "href") or ""
    assert link.startswith("/api/v1/artifacts/") and "/download?path=" in link


def test_statistics_anomalies_and_drift_name_the_columns(
    signed_in: Any, ui_server: UiServer
) -> None:
    page = signed_in("viewer")
    page.goto(f"/artifacts/{ui_server.artifacts['statistics']}")
    assert [r[0] for r in rows(page, "table.statistics")] == ["carrier", "dep_delay"]
    frame = page.frame_locator("iframe.report")
    assert frame.locator("svg").count() >= 1  # the kit's report, drawn inside the frame
    page.goto(f"/artifacts/{ui_server.artifacts['anomalies']}")
    assert any("dep_delay" in " ".join(r) for r in rows(page, "table.anomalies"))
    page.goto(f"/artifacts/{ui_server.artifacts['drift']}")
    assert "drifted" in page.inner_text(".verdict")
    drifted = page.eval_on_selector_all(
        "#drift tr.drifted", "rs => rs.map(r => r.cells[0].innerText)"
    )
    assert drifted == ["dep_delay"]


def test_an_evaluation_shows_overall_and_per_slice(signed_in: Any, ui_server: UiServer) -> None:
    page = signed_in("viewer")
    page.goto(f"/artifacts/{ui_server.artifacts['evaluation']}")
    assert rows(page, "#overall") == [["mae", "0.25"], ["rmse", "0.5"]]
    assert rows(page, "table.slice[data-slice=carrier]") == [
        ["UA", "210", "0.2", ""],
        ["AA", "190", "0.3", ""],
    ]


def test_a_model_shows_flavor_signature_and_requirements(
    signed_in: Any, ui_server: UiServer
) -> None:
    page = signed_in("viewer")
    page.goto(f"/artifacts/{ui_server.artifacts['model']}")
    assert "sklearn" in page.inner_text("#viewer table.kv")
    assert rows(page, "table.signature")[0][0] == "dep_delay"
    assert "scikit-learn" in page.inner_text("#viewer")


def test_a_stored_report_is_framed_without_scripts(
    signed_in: Any, ui_server: UiServer, watch: Watch
) -> None:
    page = signed_in("viewer")
    page.goto(f"/artifacts/{ui_server.artifacts['report']}")
    frame = page.frame_locator("iframe.report")
    assert frame.locator("#r").inner_text() == "Backtest report"
    assert page.get_attribute("iframe.report", "sandbox") == ""
    src = page.get_attribute("iframe.report", "src") or ""
    cookies = {"ctloop_key": ui_server.keys["viewer"]}
    answer = httpx.get(f"{ui_server.url}{src}", cookies=cookies)
    assert answer.headers["content-security-policy"].startswith("sandbox;")
    missing = httpx.get(f"{ui_server.url}{src}x", cookies=cookies)
    assert missing.status_code == 404 and "has no HTML file" in missing.text
