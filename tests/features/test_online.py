"""Materialization into the online store and online reads, through a real definitions
file applied to a SQLite workspace (and once through a real Redis server)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctloop.errors import FeatureError
from ctloop.features import get_online_features, materialize, materialize_incremental
from ctloop.features._repo import load_definitions
from ctloop.store._features import DefinitionDraft
from ctloop.store._online_redis import RedisOnlineStore
from ctloop.store.workspace import Workspace

NOW = datetime.now(UTC).replace(microsecond=0, tzinfo=None)

DEFINITIONS = """
from ctloop.features import Entity, FeatureService, FeatureView, Field, on_demand

airport = Entity("origin")
weather = FeatureView("weather", entities=[airport], source="{source}", timestamp="time_hour",
                      created="loaded_at", ttl="6h",
                      fields=[Field("temp", float), Field("visib", int), Field("station", str),
                              Field("observed", "timestamp")])
routes = FeatureView("routes", entities=[airport, Entity("dest")], source="{routes}",
                     timestamp="day", fields=[Field("flights", int)])

@on_demand(inputs=[weather], request=[Field("sched_dep_time", int)],
           outputs=[Field("cold_morning", bool)])
def departure(df):
    return df.assign(cold_morning=(df.temp < 3) & (df.sched_dep_time < 900))

flights_v1 = FeatureService("flights_v1", [weather, departure])
"""


def hours_ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def weather_rows(path: Path, rows: list[tuple[str, float, float, int]]) -> None:
    """(origin, hours ago, temp, visib) rows; loaded a minute after their time."""
    pq.write_table(
        pa.table(
            {
                "origin": [r[0] for r in rows],
                "time_hour": [hours_ago(r[1]) for r in rows],
                "loaded_at": [hours_ago(r[1]) + timedelta(minutes=1) for r in rows],
                "temp": [r[2] for r in rows],
                "visib": [r[3] for r in rows],
                "station": [f"{r[0]}-1" for r in rows],
                "observed": [hours_ago(r[1]) for r in rows],
            }
        ),
        path,
    )


FIRST = [
    ("EWR", 3, 1.0, 10), ("EWR", 1, 2.0, 9), ("JFK", 2, 5.0, 8), ("LGA", 10, 9.0, 7),
]  # fmt: skip


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    weather_rows(tmp_path / "weather.parquet", FIRST)
    pq.write_table(
        pa.table({"origin": ["EWR", "EWR"], "dest": ["ORD", "LAX"], "day": [hours_ago(30)] * 2,
                  "flights": [12, 3]}),
        tmp_path / "routes.parquet",
    )  # fmt: skip
    (tmp_path / "features.py").write_text(
        DEFINITIONS.format(source=tmp_path / "weather.parquet", routes=tmp_path / "routes.parquet")
    )
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    with Workspace.open(url, artifacts=str(tmp_path / "artifacts")) as workspace:
        repo = load_definitions(tmp_path / "features.py")
        workspace.features.apply([DefinitionDraft(*spec) for spec in repo.specs()])
        yield workspace


def test_materialized_values_are_read_by_service_with_on_demand_features_and_ttl(
    workspace: Workspace,
) -> None:
    [weather, routes] = materialize(workspace, ["weather", "routes"], end=NOW)
    assert (weather.rows_read, weather.rows_written) == (3, 3)
    assert routes.rows_written == 2
    got = get_online_features(
        workspace,
        "flights_v1",
        [{"origin": "EWR", "sched_dep_time": 700}, {"origin": "SFO", "sched_dep_time": 700},
         {"origin": "LGA", "sched_dep_time": 1200}, {"origin": "JFK", "sched_dep_time": 1000}],
    )  # fmt: skip
    assert got == {
        "origin": ["EWR", "SFO", "LGA", "JFK"],
        "sched_dep_time": [700, 700, 1200, 1000],
        "temp": [2.0, None, None, 5.0],  # LGA's value is 10 h old, past the 6 h ttl
        "visib": [9, None, None, 8],
        "station": ["EWR-1", None, None, "JFK-1"],
        "observed": [
            hours_ago(1).replace(tzinfo=UTC),
            None,
            None,
            hours_ago(2).replace(tzinfo=UTC),
        ],
        # the transform sees a missing temperature as NaN, as in a historical join
        "cold_morning": [True, False, False, False],
    }


def test_references_composite_keys_and_full_names(workspace: Workspace) -> None:
    materialize(workspace, end=NOW)
    got = get_online_features(
        workspace,
        ["routes:flights", "weather:temp"],
        [{"origin": "EWR", "dest": "LAX"}, {"origin": "EWR", "dest": "JFK"}],
        full_feature_names=True,
    )
    assert got == {
        "origin": ["EWR", "EWR"],
        "dest": ["LAX", "JFK"],
        "routes__flights": [3, None],
        "weather__temp": [2.0, 2.0],
    }
    assert list(get_online_features(workspace, ["weather"], [{"origin": "JFK"}])) == [
        "origin", "temp", "visib", "station", "observed",
    ]  # fmt: skip


def test_incremental_runs_start_at_the_watermark_and_a_rerun_writes_nothing(
    workspace: Workspace, tmp_path: Path
) -> None:
    [first] = materialize_incremental(workspace, ["weather"], end=hours_ago(0.5))
    # never materialized and ttl 6h: from end - 6h, so LGA's row of 10 h ago is not read
    assert first.start == hours_ago(6.5).replace(tzinfo=UTC)
    assert (first.rows_read, first.rows_written) == (2, 2)
    [again] = materialize_incremental(workspace, ["weather"], end=hours_ago(0.5))
    assert (again.rows_read, again.rows_written) == (0, 0)
    assert workspace.features.watermark("weather") == hours_ago(0.5).replace(tzinfo=UTC)
    weather_rows(tmp_path / "weather.parquet", [*FIRST, ("JFK", 0.25, 6.0, 5), ("EWR", 7, 0.0, 1)])
    [later] = materialize_incremental(workspace, ["weather"], end=NOW)
    assert (later.start, later.rows_read, later.rows_written) == (first.end, 1, 1)
    got = get_online_features(workspace, ["weather:temp"], [{"origin": "JFK"}, {"origin": "EWR"}])
    assert got["temp"] == [6.0, 2.0]
    assert len(workspace.features.materializations("weather")) == 3


def test_materializing_a_range_twice_writes_nothing_new(workspace: Workspace) -> None:
    [one] = materialize(workspace, ["weather"], start=hours_ago(4), end=hours_ago(1.5))
    assert (one.rows_read, one.rows_written) == (2, 2)  # EWR of 3 h ago, JFK of 2 h ago
    [two] = materialize(workspace, ["weather"], start=hours_ago(4), end=hours_ago(1.5))
    assert (two.rows_read, two.rows_written) == (2, 0)
    got = get_online_features(workspace, ["weather:temp"], [{"origin": "EWR"}])
    assert got["temp"] == [1.0]
    # an older range afterwards does not bring older values back
    [old] = materialize(workspace, ["weather"], start=hours_ago(12), end=hours_ago(2.5))
    assert old.rows_written == 1  # only LGA, which had no value
    assert get_online_features(workspace, ["weather:temp"], [{"origin": "EWR"}])["temp"] == [1.0]


def test_a_failing_source_leaves_the_watermark_and_the_online_values_where_they_were(
    workspace: Workspace, tmp_path: Path
) -> None:
    materialize_incremental(workspace, ["weather"], end=hours_ago(1.5))
    before = workspace.features.watermark("weather")
    spec = dict(workspace.features.get("weather").spec)
    spec["source"] = (
        "SELECT * REPLACE (CASE WHEN temp > 1.5 THEN error('the feed broke') ELSE temp END AS temp) "
        f"FROM read_parquet('{tmp_path / 'weather.parquet'}')"
    )
    workspace.features.apply([DefinitionDraft("feature_view", "weather", spec)])
    with pytest.raises(Exception, match="the feed broke"):
        materialize_incremental(workspace, ["weather"], end=NOW)
    assert workspace.features.watermark("weather") == before
    assert get_online_features(workspace, ["weather:temp"], [{"origin": "EWR"}])["temp"] == [1.0]


def test_unknown_names_and_missing_keys_are_named(workspace: Workspace) -> None:
    with pytest.raises(
        FeatureError,
        match=r"feature view 'wether' is not applied .*applied: departure, routes, weather",
    ):
        get_online_features(workspace, ["wether:temp"], [{"origin": "EWR"}])
    with pytest.raises(
        FeatureError, match=r"feature view 'weather' has no feature 'tmp' \(it has temp, visib"
    ):
        get_online_features(workspace, ["weather:tmp"], [{"origin": "EWR"}])
    with pytest.raises(
        FeatureError, match=r"feature service 'flights_v2' is not applied .*applied: flights_v1"
    ):
        get_online_features(workspace, "flights_v2", [{"origin": "EWR"}])
    with pytest.raises(
        FeatureError, match=r"entity row 1 has no 'origin', a join key of feature view 'weather'"
    ):
        get_online_features(workspace, ["weather:temp"], [{"origin": "EWR"}, {"dest": "ORD"}])
    with pytest.raises(FeatureError, match="needs request field 'sched_dep_time'"):
        get_online_features(workspace, "flights_v1", [{"origin": "EWR"}])
    with pytest.raises(FeatureError, match="'departure' is an on-demand feature view"):
        materialize(workspace, ["departure"], end=NOW)
    with pytest.raises(FeatureError, match=r"start .* is after end"):
        materialize(workspace, ["weather"], start=NOW, end=hours_ago(1))
    assert workspace.features.materializations() == []


def test_two_views_with_a_feature_of_the_same_name_need_full_names(
    workspace: Workspace,
) -> None:
    from ctloop.features import Entity, FeatureService, FeatureView, Field

    def view(name: str) -> FeatureView:
        return FeatureView(name, entities=[Entity("origin")], source="x.parquet",
                           timestamp="time_hour", fields=[Field("temp", float)])  # fmt: skip

    both = FeatureService("both", [view("a"), view("b")])
    with pytest.raises(FeatureError, match="'a' and 'b' both have a feature 'temp'"):
        get_online_features(workspace, both, [{"origin": "EWR"}])
    got = get_online_features(workspace, both, [{"origin": "EWR"}], full_feature_names=True)
    assert got == {"origin": ["EWR"], "a__temp": [None], "b__temp": [None]}


def test_no_entity_rows_give_empty_columns(workspace: Workspace) -> None:
    assert get_online_features(workspace, "flights_v1", []) == {
        "temp": [], "visib": [], "station": [], "observed": [], "cold_morning": [],
    }  # fmt: skip


def test_the_same_reads_through_a_real_redis_server(workspace: Workspace, redis_url: str) -> None:
    online = RedisOnlineStore(redis_url, prefix=f"features-{id(workspace)}")
    on_redis = dataclasses.replace(workspace, online=online)
    [record] = materialize(on_redis, ["weather"], end=NOW)
    assert record.rows_written == 3
    assert materialize(on_redis, ["weather"], end=NOW)[0].rows_written == 0
    got = get_online_features(
        on_redis,
        "flights_v1",
        [{"origin": "JFK", "sched_dep_time": 800}, {"origin": "XXX", "sched_dep_time": 1}],
    )
    assert (got["temp"], got["cold_morning"]) == ([5.0, None], [False, False])
    online.close()


def test_a_new_apply_is_seen_by_the_next_read(workspace: Workspace) -> None:
    materialize(workspace, end=NOW)
    rows = [{"origin": "EWR", "sched_dep_time": 700}]
    assert get_online_features(workspace, "flights_v1", rows)["temp"] == [2.0]
    service = dict(workspace.features.get("flights_v1", kind="feature_service").spec)
    service["features"] = ["weather:visib"]
    workspace.features.apply([DefinitionDraft("feature_service", "flights_v1", service)])
    assert get_online_features(workspace, "flights_v1", rows) == {
        "origin": ["EWR"], "sched_dep_time": [700], "visib": [9],
    }  # fmt: skip


def test_keys_and_request_fields_typed_as_text_find_their_values(
    workspace: Workspace, tmp_path: Path
) -> None:
    materialize(workspace, end=NOW)
    got = get_online_features(workspace, "flights_v1", [{"origin": "EWR", "sched_dep_time": "700"}])
    assert (got["temp"], got["cold_morning"]) == ([2.0], [True])
    with pytest.raises(FeatureError, match=r"request values \['soon'\] cannot be read as int64"):
        get_online_features(workspace, "flights_v1", [{"origin": "EWR", "sched_dep_time": "soon"}])


def test_integer_keys_and_timezone_aware_timestamps_round_trip(
    workspace: Workspace, tmp_path: Path
) -> None:
    pq.write_table(
        pa.table({
            "id": [7, 7, 8], "ts": pa.array([hours_ago(3), hours_ago(1), hours_ago(2)], pa.timestamp("us", tz="UTC")),
            "seen": pa.array([hours_ago(3)] * 3, pa.timestamp("us", tz="UTC")), "n": [1, 2, 3],
        }),
        tmp_path / "ids.parquet",
    )  # fmt: skip
    from ctloop.features import Entity, FeatureView, Field

    view = FeatureView("ids", entities=[Entity("id")], source=str(tmp_path / "ids.parquet"),
                       timestamp="ts", fields=[Field("n", int), Field("seen", "timestamp")])  # fmt: skip
    from ctloop.features._repo import to_spec

    workspace.features.apply(
        [DefinitionDraft("entity", "id", {"join_keys": ["id"], "description": ""}),
         DefinitionDraft("feature_view", "ids", to_spec(view))]
    )  # fmt: skip
    [record] = materialize(workspace, ["ids"], end=NOW)
    assert record.rows_written == 2
    got = get_online_features(workspace, ["ids"], [{"id": 7}, {"id": "8"}, {"id": 9}])
    assert got["n"] == [2, 3, None]
    assert got["seen"][:2] == [hours_ago(3).replace(tzinfo=UTC)] * 2


KILLED_CHILD = """
import sys
from datetime import datetime
from ctloop.features import materialize
from ctloop.store.workspace import Workspace
with Workspace.open(sys.argv[1], artifacts=sys.argv[2]) as ws:
    materialize(ws, ["big"], end=datetime(2030, 1, 1))
"""


def test_a_materialization_killed_mid_write_leaves_no_values_and_no_watermark(
    workspace: Workspace, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    import numpy as np

    rows = 3_000_000
    pq.write_table(
        pa.table({"k": np.arange(rows), "ts": pa.array(np.full(rows, 1_700_000_000_000_000), pa.timestamp("us")),
                  "x": np.ones(rows)}),
        tmp_path / "big.parquet",
    )  # fmt: skip
    from ctloop.features import Entity, FeatureView, Field
    from ctloop.features._repo import to_spec

    view = FeatureView("big", entities=[Entity("k")], source=str(tmp_path / "big.parquet"),
                       timestamp="ts", fields=[Field("x", float)])  # fmt: skip
    workspace.features.apply(
        [DefinitionDraft("entity", "k", {"join_keys": ["k"], "description": ""}),
         DefinitionDraft("feature_view", "big", to_spec(view))]
    )  # fmt: skip
    wal = tmp_path / "online.db-wal"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, f"sqlite:///{tmp_path / 'metadata.db'}", str(tmp_path / "artifacts")],
        stdout=subprocess.DEVNULL, env={**os.environ, "CTLOOP_ONLINE_STORE_URL": ""},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (wal.exists() and wal.stat().st_size > 1_000_000):
        assert child.poll() is None, "the materialization ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert workspace.features.watermark("big") is None
    assert get_online_features(workspace, ["big:x"], [{"k": 0}, {"k": rows - 1}])["x"] == [
        None,
        None,
    ]
    [record] = materialize_incremental(workspace, ["big"], end=NOW)
    assert record.rows_written == rows
    assert get_online_features(workspace, ["big:x"], [{"k": 0}])["x"] == [1.0]
