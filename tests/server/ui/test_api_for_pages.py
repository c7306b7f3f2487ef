"""What the pages' scripts ask of the API: a read may come with the page's cookie instead
of the header, a write may not; resuming a run is an editor's write that refuses a run
with nothing to resume."""

from __future__ import annotations

import httpx

from tests.server.ui.conftest import UiServer


def test_a_read_takes_the_cookie_and_a_write_does_not(ui_server: UiServer) -> None:
    cookies = {"ctloop_key": ui_server.keys["admin"]}
    with httpx.Client(base_url=f"{ui_server.url}/api/v1", cookies=cookies) as client:
        assert client.get(f"/runs/{ui_server.runs[1]}").json()["id"] == ui_server.runs[1]
        refused = client.put(f"/runs/{ui_server.runs[1]}/tags/note", json={"value": "x"})
        assert refused.status_code == 401
    with httpx.Client(base_url=f"{ui_server.url}/api/v1") as anonymous:
        assert anonymous.get(f"/runs/{ui_server.runs[1]}").status_code == 401


def test_resuming_needs_an_editor_and_a_run_that_did_not_succeed(ui_server: UiServer) -> None:
    def client(role: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {ui_server.keys[role]}"}
        return httpx.Client(base_url=f"{ui_server.url}/api/v1", headers=headers)

    with client("viewer") as viewer, client("editor") as editor:
        assert viewer.post(f"/runs/{ui_server.failed_run}/resume").status_code == 403
        done = editor.post(f"/runs/{ui_server.runs[1]}/resume")
        assert done.status_code == 409
        assert "succeeded; only a failed run can be resumed" in done.json()["error"]
        assert editor.post("/runs/nope/resume").status_code == 404


def test_runs_search_returns_the_parameter_columns(ui_server: UiServer) -> None:
    headers = {"Authorization": f"Bearer {ui_server.keys['viewer']}"}
    with httpx.Client(base_url=f"{ui_server.url}/api/v1", headers=headers) as client:
        found = client.get(
            "/runs/search", params={"params": "degree", "where": "params.degree = 2"}
        ).json()
    assert found["params"] == ["degree"] and found["total"] == 1
    assert found["items"][0]["params"] == {"degree": 2}


def test_the_newest_runs_page_reads_only_up_to_its_end(ui_server: UiServer) -> None:
    from ctloop.server._run_search import search_runs

    store = ui_server.workspace.metadata
    first = search_runs(store, limit=2, exact_total=False)
    assert (first["total"], first["total_exact"], first["next_offset"]) == (2, False, 2)
    whole = search_runs(store, limit=10, exact_total=False)
    assert (whole["total"], whole["total_exact"], whole["next_offset"]) == (4, True, None)
    assert [r["id"] for r in whole["items"]][:2] == [r["id"] for r in first["items"]]
    assert search_runs(store, limit=2)["total"] == 4  # the API's count stays exact


def test_runs_search_started_after_keeps_the_newer_runs(ui_server: UiServer) -> None:
    headers = {"Authorization": f"Bearer {ui_server.keys['viewer']}"}
    with httpx.Client(base_url=f"{ui_server.url}/api/v1", headers=headers) as client:
        every = client.get("/runs/search", params={"limit": 500}).json()["items"]
        middle = sorted(run["started_at"] for run in every)[len(every) // 2]
        newer = client.get("/runs/search", params={"started_after": middle, "limit": 500})
        assert newer.status_code == 200, newer.text
        assert [r["id"] for r in newer.json()["items"]] == [
            r["id"] for r in every if r["started_at"] > middle
        ]
        naive = middle.removesuffix("+00:00")  # a time without a zone is UTC
        again = client.get("/runs/search", params={"started_after": naive, "limit": 500})
        assert again.json()["items"] == newer.json()["items"]
        bad = client.get("/runs/search", params={"started_after": "yesterday"})
    assert bad.status_code == 422 and bad.json()["field"] == "started_after"
