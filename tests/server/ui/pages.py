"""Reading pages in the UI tests: a navigation has finished before a table is read."""

from __future__ import annotations

from typing import Any


def rows(page: Any, table: str) -> list[list[str]]:
    """The cells' text of each body row of ``table``, once the page has loaded."""
    page.wait_for_load_state()
    return page.eval_on_selector_all(
        f"{table} tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )


def submit(page: Any, selector: str) -> None:
    """Click ``selector``, a control that loads a new page, and wait until it has loaded:
    a click returns once the navigation is committed, before the new document is parsed."""
    with page.expect_navigation():
        page.click(selector)
