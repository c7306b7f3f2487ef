"""The standalone feature server (``ctloop features serve``) on a real uvicorn server on
127.0.0.1: Feast's request and answer, the rows protocol, bad input named, API keys, the
online store on SQLite and on a real Redis server."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctloop.features import materialize
from ctloop.features._repo import load_definitions
from ctloop.serve._feature_server import create_feature_app
from ctloop.store._features import DefinitionDraft
from ctloop.store._keys import Role
from ctloop.store._online import OnlineValue, SqliteOnlineStore
from ctloop.store._online_redis import RedisOnlineStore
from ctloop.store.workspace import Workspace
from tests.features.test_online import DEFINITIONS, FIRST, NOW, hours_ago, weather_rows
from tests.serve.conftest import LiveServer, live_app
from tests.store.test_online_contract import _free_port, redis_url

__all__ = ["redis_url"]

EWR_AT = hours_ago(1).replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A SQLite workspace with the weather definitions applied and materialized."""
    weather_rows(tmp_path / "weather.parquet", FIRST)
    pq.write_table(
        pa.table({"origin": ["EWR"], "dest": ["ORD"], "day": [hours_ago(30)], "flights": [12]}),
        tmp_path / "routes.parquet",
    )
    (tmp_path / "features.py").write_text(
        DEFINITIONS.format(source=tmp_path / "weather.parquet", routes=tmp_path / "routes.parquet")
    )
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    with Workspace.open(url, artifacts=str(tmp_path / "artifacts")) as workspace:
        repo = load_definitions(tmp_path / "features.py")
        workspace.features.apply([DefinitionDraft(*spec) for spec in repo.specs()])
        materialize(workspace, ["weather"], end=NOW)
        yield workspace


@pytest.fixture
def live(workspace: Workspace) -> Iterator[LiveServer]:
    with live_app(create_feature_app(workspace)) as server:
        yield server


def test_feasts_request_gets_feasts_answer_with_statuses_and_event_times(
    live: LiveServer,
) -> None:
    answer = live.client.post(
        "/get-online-features",
        json={"feature_service": "flights_v1",
              "entities": {"origin": ["EWR", "SFO", "LGA"], "sched_dep_time": [700, 700, 1200]}},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    names = body["metadata"]["feature_names"]
    assert names == ["origin", "sched_dep_time", "temp", "visib", "station", "observed", "cold_morning"]  # fmt: skip
    results = dict(zip(names, body["results"], strict=True))
    assert results["origin"] == {
        "values": ["EWR", "SFO", "LGA"],
        "statuses": ["PRESENT"] * 3,
        "event_timestamps": ["1970-01-01T00:00:00Z"] * 3,
    }
    # SFO was never materialized; LGA's value is 10 h old, past the 6 h ttl
    assert results["temp"] == {
        "values": [2.0, None, None],
        "statuses": ["PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE"],
        "event_timestamps": [EWR_AT, "1970-01-01T00:00:00Z", hours_ago(10).isoformat() + "Z"],
    }
    assert results["observed"]["values"] == [EWR_AT, None, None]
    assert results["cold_morning"]["values"] == [True, False, False]


def test_references_full_names_and_the_rows_protocol(live: LiveServer) -> None:
    answer = live.client.post(
        "/get-online-features",
        json={"features": ["weather:temp", "weather:visib"], "entities": {"origin": ["JFK"]},
              "full_feature_names": True},
    )  # fmt: skip
    body = answer.json()
    assert body["metadata"]["feature_names"] == ["origin", "weather__temp", "weather__visib"]
    assert [r["values"] for r in body["results"]] == [["JFK"], [5.0], [8]]
    rows = live.client.post(
        "/features",
        json={"service": "flights_v1", "rows": [{"origin": "JFK", "sched_dep_time": 800}]},
    )
    assert rows.status_code == 200, rows.text
    assert rows.json()["features"] == ["temp", "visib", "station", "observed", "cold_morning"]
    [row] = rows.json()["rows"]
    assert (row["origin"], row["temp"], row["visib"], row["cold_morning"]) == ("JFK", 5.0, 8, False)


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        (b"{not json", 400, "body", "not valid JSON"),
        ([1, 2], 400, "body", "must be a JSON object"),
        ({"entities": {"origin": ["EWR"]}}, 422, "features", "names no features"),
        ({"feature_service": "flights_v1", "features": ["weather"], "entities": {"origin": ["EWR"]}},
         422, "features", "both 'feature_service' and 'features'"),
        ({"feature_service": "flights_v2", "entities": {"origin": ["EWR"]}},
         422, "feature_service", "feature service 'flights_v2' is not applied"),
        ({"features": ["weather:tmp"], "entities": {"origin": ["EWR"]}},
         422, "features", "feature view 'weather' has no feature 'tmp'"),
        ({"features": "weather:temp", "entities": {"origin": ["EWR"]}},
         422, "features", "must be a non-empty list"),
        ({"features": ["weather:temp"], "entities": {"dest": ["ORD"]}},
         422, "origin", "entity row 0 has no 'origin', a join key of feature view 'weather'"),
        ({"feature_service": "flights_v1", "entities": {"origin": ["EWR"]}},
         422, "sched_dep_time", "a request field of feature view 'departure'"),
        ({"feature_service": "flights_v1", "entities": {"origin": ["EWR"], "sched_dep_time": ["soon"]}},
         422, "entities", "request values ['soon'] cannot be read as int64"),
        ({"features": ["weather:temp"], "entities": {"origin": ["EWR", "JFK"], "x": [1]}},
         422, "entities.x", "'x' has 1 values but 'origin' has 2"),
        ({"features": ["weather:temp"], "entities": {"origin": "EWR"}},
         422, "entities.origin", "must be a list of plain values"),
        ({"features": ["weather:temp"], "entities": []}, 422, "entities", "must be an object"),
        ({"features": ["weather:temp"], "entity": {"origin": ["EWR"]}},
         422, "entity", "unknown field 'entity'"),
        ({"features": ["weather:temp"], "entities": {"origin": ["EWR"]}, "full_feature_names": "yes"},
         422, "full_feature_names", "must be true or false"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_naming_the_field(
    live: LiveServer, body: object, status: int, field: str, words: str
) -> None:
    content = body if isinstance(body, bytes) else None
    answer = (
        live.client.post("/get-online-features", content=content)
        if content is not None
        else live.client.post("/get-online-features", json=body)
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field
    assert words in answer.json()["error"]


def test_rows_protocol_mistakes_and_unknown_endpoints_are_named(live: LiveServer) -> None:
    empty = live.client.post("/features", json={"service": "flights_v1", "rows": []})
    assert empty.status_code == 422 and empty.json()["field"] == "rows"
    nested = live.client.post(
        "/features", json={"features": ["weather"], "rows": [{"origin": [1]}]}
    )
    assert nested.status_code == 422 and "row 0 must be an object of plain values" in nested.text
    unknown = live.client.get("/get-features")
    assert unknown.status_code == 404 and "POST /get-online-features" in unknown.json()["error"]
    wrong = live.client.get("/get-online-features")
    assert wrong.status_code == 405 and "send POST" in wrong.json()["error"]


def test_health_and_metrics_count_requests_and_values_by_status(live: LiveServer) -> None:
    assert live.client.get("/health").json() == {"status": "ok", "service": None}
    live.client.post(
        "/get-online-features",
        json={"features": ["weather:temp"], "entities": {"origin": ["EWR", "SFO"]}},
    )
    live.client.post("/get-online-features", json={"entities": {}})
    text = live.client.get("/metrics").text
    assert 'ctloop_feature_requests_total{endpoint="/get-online-features",status="200"} 1.0' in text
    assert 'ctloop_feature_requests_total{endpoint="/get-online-features",status="422"} 1.0' in text
    assert 'ctloop_feature_values_total{status="PRESENT"} 1.0' in text
    assert 'ctloop_feature_values_total{status="NOT_FOUND"} 1.0' in text
    assert "ctloop_feature_entity_rows_total 2.0" in text
    assert (
        'ctloop_feature_request_latency_seconds_count{endpoint="/get-online-features"} 2.0' in text
    )


def test_a_pinned_service_is_the_default_and_the_only_one(workspace: Workspace) -> None:
    with live_app(create_feature_app(workspace, service="flights_v1")) as live:
        answer = live.client.post(
            "/features", json={"rows": [{"origin": "EWR", "sched_dep_time": 700}]}
        )
        assert answer.status_code == 200 and answer.json()["rows"][0]["temp"] == 2.0
        other = live.client.post(
            "/get-online-features", json={"features": ["weather:temp"], "entities": {"origin": ["EWR"]}}
        )  # fmt: skip
        assert other.status_code == 422 and other.json()["field"] == "features"
        assert "serves feature service 'flights_v1' only" in other.json()["error"]
        assert live.client.get("/health").json()["service"] == "flights_v1"


def test_an_apply_is_seen_by_the_next_request(live: LiveServer, workspace: Workspace) -> None:
    request = {
        "feature_service": "flights_v1",
        "entities": {"origin": ["EWR"], "sched_dep_time": [1]},
    }
    before = live.client.post("/get-online-features", json=request).json()
    assert "temp" in before["metadata"]["feature_names"]
    service = dict(workspace.features.get("flights_v1", kind="feature_service").spec)
    service["features"] = ["weather:visib"]
    workspace.features.apply([DefinitionDraft("feature_service", "flights_v1", service)])
    after = live.client.post("/get-online-features", json=request).json()
    assert after["metadata"]["feature_names"] == ["origin", "sched_dep_time", "visib"]


def test_with_auth_a_viewer_key_is_needed_and_probes_stay_open(workspace: Workspace) -> None:
    viewer = workspace.keys.create("reader", Role.VIEWER).secret
    app = create_feature_app(workspace, auth=True, key_cache_seconds=0)
    request = {"features": ["weather:temp"], "entities": {"origin": ["EWR"]}}
    with live_app(app) as live:
        refused = live.client.post("/get-online-features", json=request)
        assert refused.status_code == 401 and refused.json()["field"] == "authorization"
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = live.client.post(
            "/features", json={"features": ["weather"], "rows": [{"origin": "EWR"}]},
            headers={"Authorization": "Bearer ctl_nosuchkey"},
        )  # fmt: skip
        assert wrong.status_code == 401 and "not known to this server" in wrong.json()["error"]
        allowed = live.client.post(
            "/get-online-features", json=request, headers={"Authorization": f"Bearer {viewer}"}
        )
        assert allowed.status_code == 200 and allowed.json()["results"][1]["values"] == [2.0]
        assert live.client.get("/health").status_code == 200
        assert live.client.get("/metrics").status_code == 200


def test_the_same_through_a_real_redis_server(workspace: Workspace, redis_url: str) -> None:
    online = RedisOnlineStore(redis_url, prefix=f"feature-server-{id(workspace)}")
    on_redis = dataclasses.replace(workspace, online=online)
    materialize(on_redis, ["weather"], end=NOW)
    with live_app(create_feature_app(on_redis)) as live:
        answer = live.client.post(
            "/get-online-features",
            json={"feature_service": "flights_v1",
                  "entities": {"origin": ["JFK", "XXX"], "sched_dep_time": [800, 1]}},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        results = dict(zip(answer.json()["metadata"]["feature_names"], answer.json()["results"], strict=True))  # fmt: skip
        assert results["temp"]["values"] == [5.0, None]
        assert results["temp"]["statuses"] == ["PRESENT", "NOT_FOUND"]
    online.close()


def test_an_unreachable_redis_is_a_503_that_names_it(workspace: Workspace) -> None:
    gone = dataclasses.replace(
        workspace, online=RedisOnlineStore(f"redis://127.0.0.1:{_free_port()}/0")
    )
    with live_app(create_feature_app(gone)) as live:
        health = live.client.get("/health")
        assert health.status_code == 503 and "cannot be reached" in health.json()["error"]
        read = live.client.post(
            "/get-online-features", json={"features": ["weather:temp"], "entities": {"origin": ["EWR"]}}
        )  # fmt: skip
        assert read.status_code == 503 and "cannot be reached" in read.json()["error"]


def test_ctloop_features_serve_answers_on_its_port(workspace: Workspace, tmp_path: Path) -> None:
    port = _free_port()
    env = {"CTLOOP_STORE_URL": workspace.store_url or "", "CTLOOP_HOME": str(tmp_path / "home"),
           "CTLOOP_ARTIFACT_URL": str(tmp_path / "artifacts"), "PATH": "/usr/bin:/bin"}  # fmt: skip
    command = [sys.executable, "-m", "ctloop", "features", "serve", "--port", str(port),
               "--service", "flights_v1"]  # fmt: skip
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "ctloop features serve did not start"
                time.sleep(0.1)
        assert health.json()["service"] == "flights_v1"
        answer = httpx.post(
            f"http://127.0.0.1:{port}/features",
            json={"rows": [{"origin": "EWR", "sched_dep_time": 700}]},
        )
        assert answer.json()["rows"][0]["visib"] == 9
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
    unknown = subprocess.run(
        [*command[:-1], "flights_v9"], env=env, capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode != 0
    assert "feature service 'flights_v9' is not applied" in unknown.stderr


class CountingStore(SqliteOnlineStore):
    """The SQLite online store, counting its reads."""

    reads = 0

    def read(self, keys: Mapping[str, Sequence[str]]) -> dict[str, list[OnlineValue | None]]:
        self.reads += 1
        return super().read(keys)


def test_a_request_for_a_service_of_two_views_reads_the_online_store_once(
    workspace: Workspace,
) -> None:
    assert isinstance(workspace.online, SqliteOnlineStore)
    counting = CountingStore(workspace.online.path)
    materialize(workspace, ["routes"], end=NOW)
    both = ["weather:temp", "routes:flights", "departure:cold_morning"]
    with live_app(create_feature_app(dataclasses.replace(workspace, online=counting))) as live:
        answer = live.client.post(
            "/get-online-features",
            json={"features": both, "entities": {"origin": ["EWR"] * 50, "dest": ["ORD"] * 50,
                                                 "sched_dep_time": [700] * 50}},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert [r["values"][0] for r in answer.json()["results"][3:]] == [2.0, 12, True]
    assert counting.reads == 1
