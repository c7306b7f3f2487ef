"""GET /api/v1/monitoring/{model} and GET /api/v1/data on a workspace with six monitored
windows (the ``signal`` feature shifted from the fourth on) and a data set of two
versions, each read by one run."""

from __future__ import annotations

import re

import httpx

from ctloop.server._ops_api import severity
from tests.server.ui.ops_fixtures import MODEL, SHIFT_FROM, SHIFTED, OpsServer, ops_server

__all__ = ["ops_server"]


def get(server: OpsServer, path: str, role: str = "viewer") -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.keys[role]}"}
    return httpx.get(f"{server.url}/api/v1{path}", headers=headers, timeout=30)


def test_monitoring_names_the_shifted_feature_in_the_windows_after_the_shift(
    ops_server: OpsServer,
) -> None:
    answer = get(ops_server, f"/monitoring/{MODEL}")
    assert answer.status_code == 200
    body = answer.json()
    windows = body["windows"]
    assert [w["run_id"] for w in windows] == ops_server.windows  # oldest first
    assert set(body["features"]) >= {"signal", "weak"}
    for i, window in enumerate(windows):
        skew = window["skew"][SHIFTED]
        assert skew["drifted"] is (i >= SHIFT_FROM), (i, skew)
        assert (skew["severity"] >= 1) is skew["drifted"]
        assert not window["skew"]["weak"]["drifted"]
        assert window["rows"] == 400 and window["performance"]["metric"]
        # logged without latencies (as before they were kept): counted, not timed
        assert window["traffic"] == {"predictions": 400, "requests": 10, "latency_ms": None}
    assert windows[SHIFT_FROM]["verdict"] in ("drift", "degraded")
    assert windows[0]["verdict"] == "ok"
    raised = {a["report_artifact_id"] for a in body["alerts"]}
    assert windows[SHIFT_FROM]["report_id"] in raised


def test_monitoring_keeps_the_newest_windows_and_names_an_unknown_model(
    ops_server: OpsServer,
) -> None:
    newest = get(ops_server, f"/monitoring/{MODEL}?limit=2").json()["windows"]
    assert [w["run_id"] for w in newest] == ops_server.windows[-2:]
    missing = get(ops_server, "/monitoring/nope")
    assert missing.status_code == 404 and "'nope' is not registered" in missing.json()["error"]
    assert get(ops_server, f"/monitoring/{MODEL}?limit=0").status_code == 422


def test_data_lists_each_version_with_the_runs_it_fed(ops_server: OpsServer) -> None:
    answer = get(ops_server, "/data")
    assert answer.status_code == 200
    (events,) = answer.json()["items"]
    assert events["name"] == "events"
    assert [v["version"] for v in events["versions"]] == [2, 1]
    for version in events["versions"]:
        fed = [r["run_id"] for r in version["runs"]]
        assert fed == [ops_server.data_runs[version["version"]]]
        assert version["files"] == 1 and version["message"].endswith("days")


def test_severity_puts_a_test_at_its_threshold_at_one() -> None:
    assert severity({"statistic": 0.1, "p_value": None, "threshold": 0.1}) == 1.0
    assert severity({"statistic": 5.0, "p_value": 0.01, "threshold": 0.01}) == 1.0
    assert severity({"statistic": 9.0, "p_value": 0.0, "threshold": 0.05}) == 10.0
    assert severity({"statistic": 0.0, "p_value": 1.0, "threshold": 0.05}) == 0.0


def page(server: OpsServer, path: str, role: str = "viewer", **kwargs: object) -> httpx.Response:
    """A page of the web UI, signed in with the key of ``role`` (its cookie)."""
    cookies = {"ctloop_key": server.keys[role]}
    return httpx.request(
        str(kwargs.pop("method", "GET")),
        f"{server.url}{path}",
        cookies=cookies,
        timeout=30,
        **kwargs,  # type: ignore[arg-type]
    )


def test_pages_answer_bad_input_with_a_sentence(ops_server: OpsServer) -> None:
    bad = page(ops_server, f"/monitoring/{MODEL}?against=yesterday")
    assert bad.status_code == 400 and "against=&#x27;yesterday&#x27; is not known" in bad.text
    assert page(ops_server, f"/monitoring/{MODEL}?windows=many").status_code == 400
    not_report = ops_server.workspace.metadata.list_data_versions()[0].artifact_id
    missing = page(ops_server, f"/monitoring/{MODEL}/windows/{not_report}")
    assert missing.status_code == 404 and "not a monitoring report" in missing.text
    keys = page(ops_server, "/keys", "admin")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', keys.text)
    assert token is not None
    form = {"name": "  ", "role": "viewer", "csrf": token.group(1)}
    blank = page(ops_server, "/keys", "admin", method="POST", data=form)
    assert blank.status_code == 400 and "give the key a name" in blank.text
    form = {"name": "x", "role": "owner", "csrf": token.group(1)}
    wrong = page(ops_server, "/keys", "admin", method="POST", data=form)
    assert wrong.status_code == 400 and "role &#x27;owner&#x27; is not one of" in wrong.text


def test_a_window_report_is_the_stored_page_and_may_run_no_script(ops_server: OpsServer) -> None:
    windows = get(ops_server, f"/monitoring/{MODEL}").json()["windows"]
    shown = page(ops_server, f"/monitoring/{MODEL}/windows/{windows[SHIFT_FROM]['report_id']}")
    assert shown.status_code == 200 and SHIFTED in shown.text
    policy = shown.headers["content-security-policy"]
    assert "sandbox" in policy and "script-src" not in policy and "default-src 'none'" in policy


def test_declared_triggers_are_answered_with_schedule_state_and_runs(
    ops_server: OpsServer,
) -> None:
    from datetime import UTC, datetime, timedelta

    from ctloop.server._declared_triggers import next_slot

    asked = datetime.now(UTC)
    body = get(ops_server, "/triggers/declared").json()
    assert body["error"] is None
    found = {t["trigger"]: t for t in body["items"]}
    assert list(found) == [
        "retrain/drifted",
        "retrain/nightly",
        "retrain/new-events",
        "retrain/by-hand",
        "old/gone",
    ]
    drifted = found["retrain/drifted"]
    assert drifted["declared"] and drifted["kind"] == "monitor"
    assert drifted["parameters"] == {"rows": 3000}
    assert drifted["firings"] == {"succeeded": 1} and drifted["runs_started"] == 1
    assert drifted["runs"][0]["run_id"] == ops_server.training_run
    # due 2h after its monitoring job last ran (30 minutes before the server started)
    due = datetime.fromisoformat(drifted["next_due_at"])
    assert asked + timedelta(minutes=80) < due < asked + timedelta(minutes=91)
    nightly = found["retrain/nightly"]
    assert nightly["cooldown_s"] == 6 * 3600 and nightly["firings"] == {}
    assert datetime.fromisoformat(nightly["next_due_at"]) == next_slot("0 3 * * *", asked)
    never = found["retrain/new-events"]
    assert never["last_checked_at"] is None and never["next_due_at"] is None
    assert never["schedule"] == "each scheduler tick"
    assert found["old/gone"]["declared"] is False
