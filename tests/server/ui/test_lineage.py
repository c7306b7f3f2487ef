"""The lineage page in Chromium: from a model alias, a run, an artifact or a data
version, grown a hop at a time from the API; a 500-step run opens on its last step."""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.ui.conftest import LONG_STEPS, MODEL, UiServer

pytestmark = pytest.mark.chromium


def labels(page: Any) -> list[str]:
    page.wait_for_selector("#lineage[data-ready]")
    return page.eval_on_selector_all("#lineage g.node", "gs => gs.map(g => g.dataset.label)")


def test_a_model_alias_walks_back_to_the_data_it_was_made_from(
    signed_in: Any, ui_server: UiServer
) -> None:
    page = signed_in("viewer")
    page.goto(f"/lineage/{MODEL}@champion")
    assert labels(page) == [f"{MODEL} v1", "fit", "score"]  # its writer and its reader
    expand(page, "fit", "up")
    assert "train" in labels(page)
    expand(page, "train", "up")
    assert "split" in labels(page)
    page.click("#lineage g.node[data-label=split]")
    assert "open the step in its run" in page.inner_text("#lineage-detail")
    page.click("text=open the step in its run")
    assert "/runs/" in page.url and page.url.endswith("#step-split")


def test_a_long_run_opens_on_its_last_step_and_pages_a_busy_table(
    signed_in: Any, ui_server: UiServer
) -> None:
    page = signed_in("viewer")
    page.goto(f"/lineage/{ui_server.long_run}")
    last = f"step_{LONG_STEPS - 1}"
    assert labels(page) == [last, "previous", "table", "output"]
    expand(page, "table", "up")
    assert "step_000" in labels(page)
    expand(page, "table", "down")
    readers = [n for n in labels(page) if n.startswith("step_")]
    # step_000, the first page of 50 readers of its table, and the last step if not in it
    assert 51 <= len(readers) <= 52
    page.click("#lineage g.more")
    assert 101 <= len([n for n in labels(page) if n.startswith("step_")]) <= 102
    assert page.locator("#lineage g.node").count() < 200  # never the whole run at once


def test_an_unknown_reference_is_a_404_sentence(signed_in: Any, watch: Any) -> None:
    page = signed_in("viewer")
    answer = page.goto("/lineage/nothing-like-this")
    assert answer is not None and answer.status == 404
    assert "is no artifact id, run id, data version" in page.inner_text("p.error")
    watch.refused.clear()


def expand(page: Any, label: str, direction: str) -> None:
    """Click the ◀ (``up``) or ▶ (``down``) of the node labelled ``label``."""
    node = page.get_attribute(f"#lineage g.node[data-label='{label}']", "data-id")
    page.click(f"#lineage circle[data-expand={direction}][data-for='{node}']")
