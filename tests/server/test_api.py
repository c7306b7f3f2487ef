"""The REST API on the real server: pages, run details, metrics, artifacts, lineage,
the registry, writes with their audit entries, concurrent writers, and key secrecy."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from ctloop.store.records import MetricRecord, TagRecord
from tests.server._data import T0, make_run, run_with_model
from tests.server.conftest import LiveServer


def test_pages_walk_2500_runs_newest_first_without_duplicates_or_misses(
    live: LiveServer,
) -> None:
    runs = [make_run(i, pipeline="paging") for i in range(2_400)]
    # 100 runs that share one start time: a page may end inside them
    runs += [replace(make_run(1_200, pipeline="paging"), id=f"tie{i:04d}") for i in range(100)]
    for run in runs:
        live.workspace.metadata.create_run(run)
    seen: list[str] = []
    cursor = None
    with live.client("viewer") as client:
        while True:
            params = {"pipeline": "paging", "limit": 333, **({"cursor": cursor} if cursor else {})}
            page = client.get("/runs", params=params).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert len(seen) == 2_500 == len(set(seen))
    assert set(seen) == {run.id for run in runs}
    order = sorted(runs, key=lambda r: (r.started_at, r.id), reverse=True)
    assert seen == [r.id for r in order]


def test_runs_filter_by_trigger_and_status(live: LiveServer) -> None:
    for i in range(5):
        live.workspace.metadata.create_run(make_run(i, pipeline="filters", trigger=f"t{i % 2}"))
    with live.client("viewer") as client:
        page = client.get("/runs", params={"pipeline": "filters", "trigger": "t1"}).json()
        assert [item["parameters"]["i"] for item in page["items"]] == [3, 1]
        failed = client.get("/runs", params={"pipeline": "filters", "status": "failed"}).json()
        assert failed["items"] == []
        assert client.get("/runs", params={"status": "done"}).status_code == 422
        assert client.get("/runs", params={"limit": 1001}).status_code == 422
        bad = client.get("/runs", params={"cursor": "bm90LWEtY3Vyc29y"})
        assert bad.status_code == 400 and bad.json()["field"] == "cursor"


def test_a_run_comes_with_params_latest_metrics_tags_and_executions(live: LiveServer) -> None:
    run, artifact, execution_id = run_with_model(live.workspace)
    live.workspace.metadata.log_batch(tags=[TagRecord(run.id, "team", "ml")])
    with live.client("viewer") as client:
        detail = client.get(f"/runs/{run.id}").json()
        assert detail["params"] == {"lr": "0.1"} and detail["tags"] == {"team": "ml"}
        assert detail["metrics"]["loss"]["step"] == 49
        assert [e["id"] for e in detail["executions"]] == [execution_id]
        history = client.get(f"/runs/{run.id}/metrics/loss", params={"max_points": 10}).json()
        steps = [p["step"] for p in history["points"]]
        assert history["count"] == 50 and len(steps) == 10 and (steps[0], steps[-1]) == (0, 49)
        execution = client.get(f"/executions/{execution_id}").json()
        assert execution["events"][0]["artifact_id"] == artifact.id
        assert client.get("/runs/nonexistent-run").status_code == 404


def test_runs_search_filters_by_metric_conditions_sorts_and_pages(live: LiveServer) -> None:
    runs = [make_run(i, pipeline="searching") for i in range(6)]
    for i, run in enumerate(runs):
        live.workspace.metadata.create_run(run)
        if i < 5:
            metric = MetricRecord(run.id, "auc", 0.5 + i / 10, None, timestamp=T0)
            live.workspace.metadata.log_batch(metrics=[metric])
    with live.client("viewer") as client:
        params = {"pipeline": "searching", "where": "auc > 0.65", "sort": "-metrics.auc"}
        page = client.get("/runs/search", params={**params, "limit": 2}).json()
        assert page["total"] == 3 and page["next_offset"] == 2
        assert [item["id"] for item in page["items"]] == [runs[4].id, runs[3].id]
        assert [item["metrics"]["auc"] for item in page["items"]] == [0.9, 0.8]
        rest = client.get("/runs/search", params={**params, "limit": 2, "offset": 2}).json()
        assert [item["id"] for item in rest["items"]] == [runs[2].id]
        assert rest["next_offset"] is None
        ascending = client.get(
            "/runs/search", params={"pipeline": "searching", "sort": "metrics.auc"}
        ).json()
        # the run without the metric comes last
        assert [item["id"] for item in ascending["items"]] == [r.id for r in runs]
        bad = client.get("/runs/search", params={"where": "auc is high"})
        assert bad.status_code == 400 and bad.json()["field"] == "where"
        bad = client.get("/runs/search", params={"sort": "colour"})
        assert bad.status_code == 400 and bad.json()["field"] == "sort"
        compared = client.get("/runs/compare", params={"runs": f"{runs[0].id},{runs[4].id}"})
        assert compared.status_code == 200
        too_many = ",".join([r.id for r in runs] * 4)
        assert client.get("/runs/compare", params={"runs": too_many}).status_code == 400


def test_artifacts_download_by_id_and_recorded_path_only(live: LiveServer) -> None:
    _, artifact, execution_id = run_with_model(live.workspace)
    with live.client("viewer") as client:
        meta = client.get(f"/artifacts/{artifact.id}").json()
        assert [f["path"] for f in meta["files"]] == ["model.json", "sub/readme.txt"]
        got = client.get(f"/artifacts/{artifact.id}/download", params={"path": "sub/readme.txt"})
        assert got.status_code == 200 and got.content == b"hi"
        for path in ("../../../etc/passwd", "/etc/passwd", "sub/../model.json", "%2e%2e/x"):
            refused = client.get(f"/artifacts/{artifact.id}/download", params={"path": path})
            assert refused.status_code == 400 and refused.json()["field"] == "path"
        missing = client.get(f"/artifacts/{artifact.id}/download", params={"path": "sub/x"})
        assert missing.status_code == 404 and "has no file" in missing.json()["error"]
        several = client.get(f"/artifacts/{artifact.id}/download")
        assert several.status_code == 404 and "pass ?path=" in several.json()["error"]
        up = client.get(f"/artifacts/{artifact.id}/lineage").json()
        assert [e["execution_id"] for e in up["items"]] == [execution_id]
        down = client.get(f"/artifacts/{artifact.id}/lineage", params={"direction": "downstream"})
        assert down.json()["items"] == []


def test_aliases_move_by_role_and_every_write_is_audited(live: LiveServer) -> None:
    run_with_model(live.workspace)
    with live.client("editor") as editor, live.client("admin") as admin:
        staging = editor.put("/models/flights/aliases/staging", json={"version": 1})
        assert staging.status_code == 200
        refused = editor.put("/models/flights/aliases/champion", json={"version": 1})
        assert refused.status_code == 403 and "admin" in refused.json()["error"]
        assert admin.put("/models/flights/aliases/champion", json={"version": 1}).is_success
        assert editor.put("/models/flights/aliases/x", json={"version": 99}).status_code == 404
        assert editor.delete("/models/flights/aliases/staging").is_success
        aliases = editor.get("/models/flights/aliases", params={"alias": "champion"}).json()
        assert aliases["aliases"]["champion"] == 1
        assert aliases["history"]["items"][-1]["moved_by"] == "admin-key"
        entries = admin.get("/audit", params={"limit": 1000}).json()["items"]
    mine = [
        (e["actor"], e["action"], e["status"])
        for e in entries
        if "flights@" in e["object"] or (e["action"] == "refused" and "champion" in e["object"])
    ]
    assert ("editor-key", "alias.set", 200) in mine
    assert ("admin-key", "alias.set", 200) in mine
    assert ("editor-key", "alias.delete", 200) in mine
    assert ("editor-key", "refused", 403) in mine
    assert all(e["remote"] == "127.0.0.1" for e in entries)


def test_an_alias_rolls_back_by_role_audited_and_a_version_has_a_card(
    live: LiveServer,
) -> None:
    run, artifact, _ = run_with_model(live.workspace)
    for _ in range(2):
        live.workspace.registry.register_version("rollbacks", artifact.id, run_id=run.id)
    with live.client("editor") as editor, live.client("admin") as admin:
        for version in (1, 2):
            assert editor.put("/models/rollbacks/aliases/staging", json={"version": version})
        back = editor.post("/models/rollbacks/aliases/staging/rollback", json={"reason": "bad"})
        assert back.status_code == 200 and back.json()["move"]["to_version"] == 1
        assert admin.put("/models/rollbacks/aliases/champion", json={"version": 2}).is_success
        refused = editor.post("/models/rollbacks/aliases/champion/rollback", json={})
        assert refused.status_code == 403 and "admin" in refused.json()["error"]
        card = editor.get("/models/rollbacks/versions/2/card")
        assert card.status_code == 200, card.text
        assert card.json()["model_version"]["version"] == 2
        assert card.json()["run"]["id"] == run.id and card.json()["metrics"]["loss"] == 0.02
        assert editor.get("/models/rollbacks/versions/9/card").status_code == 404
        entries = admin.get("/audit", params={"limit": 1000}).json()["items"]
    rolled = [e for e in entries if e["action"] == "alias.rollback"]
    assert [(e["actor"], e["object"], e["detail"]["reason"]) for e in rolled] == [
        ("editor-key", "rollbacks@staging", "bad")
    ]


def test_eight_writers_through_the_server_lose_nothing(live: LiveServer) -> None:
    run = make_run(0, pipeline="writers")
    live.workspace.metadata.create_run(run)
    run_with_model(live.workspace)
    barrier = threading.Barrier(8)
    failures: list[int] = []

    def write(worker: int) -> None:
        with live.client("editor") as client:
            barrier.wait(timeout=30)
            for i in range(10):
                r = client.put(f"/runs/{run.id}/tags/w{worker}-{i}", json={"value": str(i)})
                a = client.put(f"/models/flights/aliases/w{worker}", json={"version": 1})
                failures.extend(x.status_code for x in (r, a) if x.status_code != 200)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    tags = {t.key for t in live.workspace.metadata.get_tags(run.id)}
    assert tags == {f"w{w}-{i}" for w in range(8) for i in range(10)}
    aliases = live.workspace.registry.get_model("flights").aliases
    assert {f"w{w}" for w in range(8)} <= set(aliases)
    audited = live.workspace.audit.list(action="run.tag.set", limit=1000)
    assert len([e for e in audited if e.object == f"run {run.id}"]) == 80


def test_keys_are_managed_over_the_api_and_never_logged(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with live.client("admin") as admin:
        created = admin.post("/keys", json={"name": "ci", "role": "editor"})
        assert created.status_code == 201
        body = created.json()
        secret = body["key"]
        assert secret.startswith(body["prefix"]) and body["role"] == "editor"
        listed = admin.get("/keys").json()["items"]
        assert body["id"] in {k["id"] for k in listed} and secret not in str(listed)
        with live.client() as fresh:
            headers = {"Authorization": f"Bearer {secret}"}
            assert fresh.get("/runs", headers=headers).status_code == 200
            assert fresh.get("/runs/missing", headers=headers).status_code == 404
            assert admin.delete(f"/keys/{body['id']}").json()["revoked_at"] is not None
            assert fresh.get("/runs", headers=headers).status_code == 401
        audit = admin.get("/audit", params={"action": "key.create"}).json()["items"]
        assert audit[0]["detail"]["id"] == body["id"]
        assert secret not in str(audit)
        assert admin.get("/audit", params={"cursor": "WyJ4Il0"}).status_code == 400
    assert live.workspace.keys.get(body["id"]).last_used_at is not None
    for secret_value in [secret, *live.keys.values()]:
        assert secret_value not in caplog.text


def test_expiry_in_a_created_key_must_name_its_zone(live: LiveServer) -> None:
    with live.client("admin") as admin:
        naive = admin.post(
            "/keys", json={"name": "n", "role": "viewer", "expires_at": "2030-01-01T00:00:00"}
        )
        assert naive.status_code == 400 and naive.json()["field"] == "expires_at"
        when = (T0 + timedelta(days=3650)).isoformat()
        made = admin.post("/keys", json={"name": "n", "role": "viewer", "expires_at": when})
        assert made.status_code == 201 and made.json()["expires_at"] is not None
        assert admin.post("/keys", json={"name": "n", "role": "owner"}).status_code == 422


def test_a_search_page_past_any_workspace_is_a_422_naming_offset(live: LiveServer) -> None:
    with live.client("viewer") as client:
        answer = client.get("/runs/search", params={"offset": 33711761689731375104})
    assert answer.status_code == 422
    assert answer.json()["field"] == "offset" or "offset" in answer.json()["error"]
