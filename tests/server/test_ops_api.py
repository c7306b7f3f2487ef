"""GET /api/v1/monitoring/{model} and GET /api/v1/data on a workspace with six monitored
windows (the ``signal`` feature shifted from the fourth on) and a data set of two
versions, each read by one run."""

from __future__ import annotations

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
