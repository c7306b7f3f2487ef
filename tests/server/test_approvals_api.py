"""The approvals API of the team server: anyone with a key lists approvals, only an
admin approves or rejects one, the decision names the key and is audited."""

from __future__ import annotations

from tests.server.conftest import LiveServer


def test_an_admin_approves_a_requested_promotion_and_others_are_refused(
    live: LiveServer,
) -> None:
    store = live.workspace.approvals
    asked = store.request("churn-api", 7, "d7", "prod", source="staging", by="ci")
    with live.client("viewer") as viewer:
        page = viewer.get("/approvals", params={"model": "churn-api", "state": "requested"})
        assert page.status_code == 200
        assert [(a["id"], a["state"]) for a in page.json()["items"]] == [(asked.id, "requested")]
        assert viewer.get(f"/approvals/{asked.id}").json()["requested_by"] == "ci"
        refused = viewer.post(f"/approvals/{asked.id}/approve", json={"reason": "ok"})
        assert refused.status_code == 403
    with live.client("editor") as editor:
        assert (
            editor.post(f"/approvals/{asked.id}/approve", json={"reason": "ok"}).status_code == 403
        )
    with live.client() as anonymous:
        assert anonymous.get("/approvals").status_code == 401
    with live.client("admin") as admin:
        done = admin.post(f"/approvals/{asked.id}/approve", json={"reason": "reviewed ci-report"})
        assert done.status_code == 200, done.text
        assert (done.json()["state"], done.json()["decided_by"]) == ("approved", "admin-key")
        again = admin.post(f"/approvals/{asked.id}/reject", json={"reason": "changed my mind"})
        assert again.status_code == 409
        assert "is approved (by admin-key); it cannot become rejected" in again.json()["error"]
        assert admin.post("/approvals/9999/approve", json={"reason": "x"}).status_code == 404
        assert admin.post(f"/approvals/{asked.id}/approve", json={}).status_code in (400, 422)
    assert store.get(asked.id).state == "approved"
    entries = live.workspace.audit.list(action="approval.approve")
    assert entries and entries[0].actor == "admin-key"
    assert entries[0].detail["reason"] == "reviewed ci-report"
