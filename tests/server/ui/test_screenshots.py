"""A screenshot of every page, kept in build/ui-screenshots/ (docs/ui.md links them);
each page opens with no console error and no failed request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.server.ui.conftest import MODEL, UiServer

pytestmark = pytest.mark.chromium

SHOTS = Path(__file__).resolve().parents[3] / "build" / "ui-screenshots"


def test_every_page_is_drawn_and_kept_as_a_screenshot(signed_in: Any, ui_server: UiServer) -> None:
    page = signed_in("admin")
    page.set_viewport_size({"width": 1280, "height": 900})
    pages = {
        "runs": ("/runs?columns=mse&params=degree", "#runs tbody tr"),
        "run": (f"/runs/{ui_server.runs[2]}#step-fit", "#step-panel[data-loaded]"),
        "compare": (f"/compare?runs={ui_server.runs[1]},{ui_server.runs[2]}", "#compare"),
        "lineage": (f"/lineage/{MODEL}@champion", "#lineage[data-ready]"),
        "artifact-table": (f"/artifacts/{ui_server.artifacts['table']}", "#preview"),
        "artifact-drift": (f"/artifacts/{ui_server.artifacts['drift']}", "#drift"),
        "artifact-evaluation": (f"/artifacts/{ui_server.artifacts['evaluation']}", "#overall"),
        "models": ("/models", "#models"),
        "model": (f"/models/{MODEL}", "#history"),
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, (url, ready) in pages.items():
        page.goto(url)
        page.wait_for_selector(ready)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        assert (SHOTS / f"{name}.png").stat().st_size > 5_000, name
