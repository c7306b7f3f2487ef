"""Materialization's query and its streaming into a real SQLite online store: the latest
row per key across many fetched batches, composite keys beside a source column that
happens to be called ``key``, the cyclic collector left as it was found, and a full and an
incremental load that end where writing every row one at a time ends."""

from __future__ import annotations

import dataclasses
import gc
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctloop.errors import FeatureError, StoreError
from ctloop.features import (
    Entity,
    FeatureView,
    Field,
    _materialize,
    materialize,
    materialize_incremental,
)
from ctloop.store import _online as online
from ctloop.store._online import SqliteOnlineStore, entity_key
from ctloop.store.workspace import Workspace

T0 = 1_700_000_000_000_000  # microseconds
END = datetime(2030, 1, 1)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    online = SqliteOnlineStore(tmp_path / "online.db")
    with Workspace.in_memory(tmp_path / "artifacts") as ws:
        yield dataclasses.replace(ws, online=online)
    online.close()


def test_the_latest_row_of_each_key_is_written_across_many_batches(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_materialize, "FETCH", 7)  # many small batches
    rng = np.random.default_rng(3)
    rows, keys = 500, 60
    key = rng.integers(0, keys, rows)
    ts = T0 + rng.permutation(rows) * 1_000_000  # distinct times: one latest row per key
    value = rng.normal(size=rows)
    pq.write_table(
        pa.table({"k": key, "ts": pa.array(ts, pa.timestamp("us")), "x": value}),
        tmp_path / "x.parquet",
    )
    view = FeatureView("x", entities=[Entity("k")], source=str(tmp_path / "x.parquet"),
                       timestamp="ts", fields=[Field("x", float)])  # fmt: skip
    [record] = materialize(workspace, [view], end=END)
    latest = {
        int(k): float(v) for k, _, v in sorted(zip(key, ts, value, strict=True), key=lambda r: r[1])
    }
    assert record.rows_read == record.rows_written == len(latest)
    stored = workspace.online.read({"x": [str(k) for k in sorted(latest)]})["x"]
    assert [json.loads(v.payload)[0] if v else None for v in stored] == [
        latest[k] for k in sorted(latest)
    ]
    [again] = materialize(workspace, [view], end=END)
    assert (again.rows_read, again.rows_written) == (len(latest), 0)


def test_composite_keys_beside_a_source_column_named_key(
    workspace: Workspace, tmp_path: Path
) -> None:
    # the source's own "key" column must not be taken for the entity key
    pq.write_table(
        pa.table({"origin": ["EWR", "EWR", "JFK"], "dest": ["ORD", "ORD", "ORD"],
                  "key": [1, 2, 3], "ts": pa.array([T0, T0 + 1, T0], pa.timestamp("us")),
                  "delay": [5, 7, 9]}),
        tmp_path / "routes.parquet",
    )  # fmt: skip
    view = FeatureView("routes", entities=[Entity("route", join_keys=["origin", "dest"])],
                       source=str(tmp_path / "routes.parquet"), timestamp="ts",
                       fields=[Field("delay", int), Field("key", int)])  # fmt: skip
    [record] = materialize(workspace, [view], end=END)
    assert record.rows_written == 2
    stored = workspace.online.read(
        {"routes": [entity_key(["EWR", "ORD"]), entity_key(["JFK", "ORD"])]}
    )
    assert [v.payload if v else None for v in stored["routes"]] == ["[7,2]", "[9,3]"]


def test_the_collector_is_on_again_after_a_materialization_and_after_a_failure(
    workspace: Workspace, tmp_path: Path
) -> None:
    assert gc.isenabled()
    pq.write_table(pa.table({"k": [1], "ts": pa.array([T0], pa.timestamp("us")), "x": [1.0]}),
                   tmp_path / "one.parquet")  # fmt: skip
    view = FeatureView("one", entities=[Entity("k")], source=str(tmp_path / "one.parquet"),
                       timestamp="ts", fields=[Field("x", float)])  # fmt: skip
    materialize(workspace, [view], end=END)
    assert gc.isenabled()
    missing = FeatureView("gone", entities=[Entity("k")], source=str(tmp_path / "gone.parquet"),
                          timestamp="ts", fields=[Field("x", float)])  # fmt: skip
    with pytest.raises(FeatureError, match="gone"):
        materialize(workspace, [missing], end=END)
    assert gc.isenabled()
    gc.disable()
    try:
        materialize(workspace, [view], end=END)
        assert not gc.isenabled()  # left off, as the caller had it
    finally:
        gc.enable()


class _FailingAfter(online.MemoryOnlineStore):
    """A store whose write takes ``batches`` batches, then fails."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.batches, self.taken = batches, 0

    def write_columns(self, view: str, batches: Iterable[online.Columns]) -> int:
        for _ in batches:
            self.taken += 1
            if self.taken == self.batches:
                raise StoreError("the store broke")
        return 0


def test_a_store_failing_part_way_stops_the_reading_ahead_and_keeps_the_watermark(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_materialize, "FETCH", 5)
    rows = 400
    pq.write_table(
        pa.table({"k": range(rows), "ts": pa.array([T0] * rows, pa.timestamp("us")),
                  "x": [float(i) for i in range(rows)]}),
        tmp_path / "x.parquet",
    )  # fmt: skip
    view = FeatureView("x", entities=[Entity("k")], source=str(tmp_path / "x.parquet"),
                       timestamp="ts", fields=[Field("x", float)])  # fmt: skip
    failing = _FailingAfter(batches=3)
    with pytest.raises(StoreError, match="the store broke"):
        materialize(dataclasses.replace(workspace, online=failing), [view], end=END)
    assert failing.taken == 3  # the reader stopped: it is not waiting with more batches
    assert not [t for t in threading.enumerate() if t.name == "ctloop-read-ahead"]
    assert workspace.features.watermark("x") is None
    [record] = materialize(workspace, [view], end=END)  # a real store: everything, once
    assert record.rows_read == record.rows_written == rows
    stored = workspace.online.read({"x": [str(i) for i in range(rows)]})["x"]
    assert [json.loads(v.payload)[0] if v else None for v in stored] == [float(i) for i in range(rows)]  # fmt: skip


def _stored_rows(store: SqliteOnlineStore, view: str) -> list[tuple[str, int, int, str]]:
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute(
            f'SELECT key, event_us, created_us, payload FROM "fv_{view}" ORDER BY key'
        ).fetchall()
    finally:
        conn.close()


def test_a_full_and_an_incremental_load_agree_row_for_row_with_the_slow_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small batches and statements: a key's rows straddle batches, statements end mid-batch
    monkeypatch.setattr(_materialize, "FETCH", 11)
    monkeypatch.setattr(online, "ROWS_PER_INSERT", 4)
    rng = np.random.default_rng(7)
    rows, keys = 600, 90
    key = rng.integers(0, keys, rows)
    ts = T0 + rng.integers(0, 40, rows) * 3_600_000_000  # many ties on the event time
    created = ts + rng.permutation(rows) * 1_000  # ties broken by the created time
    value = rng.normal(size=rows).round(6)
    count = rng.integers(0, 100, rows)
    pq.write_table(
        pa.table({"k": key, "ts": pa.array(ts, pa.timestamp("us")),
                  "created": pa.array(created, pa.timestamp("us")), "x": value,
                  "n": pa.array([None if c % 7 == 0 else int(c) for c in count], pa.int64())}),
        tmp_path / "x.parquet",
    )  # fmt: skip
    view = FeatureView("x", entities=[Entity("k")], source=str(tmp_path / "x.parquet"),
                       timestamp="ts", created="created",
                       fields=[Field("x", float), Field("n", int)])  # fmt: skip
    # the slow path: every row through write(), one at a time, the newer kept per key
    slow = SqliteOnlineStore(tmp_path / "slow.db")
    for i in rng.permutation(rows):
        n = None if count[i] % 7 == 0 else int(count[i])
        slow.write("x", [(str(key[i]), int(ts[i]), int(created[i]), json.dumps([value[i], n]))])
    expected = {k: (e, c, json.loads(p)) for k, e, c, p in _stored_rows(slow, "x")}
    full, incremental = (SqliteOnlineStore(tmp_path / f"{n}.db") for n in ("full", "incr"))
    with Workspace.in_memory(tmp_path / "artifacts") as ws:
        [record] = materialize(dataclasses.replace(ws, online=full), [view], end=END)
        assert record.rows_read == record.rows_written == len(expected)
    with Workspace.in_memory(tmp_path / "artifacts") as ws:  # a watermark of its own
        split = datetime.fromtimestamp((T0 + 20 * 3_600_000_000) / 1e6, UTC).replace(tzinfo=None)
        by_parts = dataclasses.replace(ws, online=incremental)
        [first] = materialize_incremental(by_parts, [view], end=split)
        [second] = materialize_incremental(by_parts, [view], end=END)
        assert 0 < first.rows_written < len(expected) and second.rows_written > 0
    stored = _stored_rows(full, "x")
    assert stored == _stored_rows(incremental, "x")
    assert {k: (e, c, json.loads(p)) for k, e, c, p in stored} == expected
    for store in (slow, full, incremental):
        store.close()


def test_neighbours_with_equal_hashes_but_different_keys_are_both_kept() -> None:
    keys = pa.array(["a", "a", "b", "c", "c"])
    collided = pa.array([1, 1, 1, 1, 1], pa.uint64())  # every hash the same
    assert _materialize._key_starts(keys, collided, None).tolist() == [1, 0, 1, 1, 0]
    assert _materialize._key_starts(keys, collided, (1, "a")).tolist() == [0, 0, 1, 1, 0]
    assert _materialize._key_starts(keys, collided, (1, "z")).tolist() == [1, 0, 1, 1, 0]
    assert _materialize._key_starts(keys, collided, (2, "a")).tolist() == [1, 0, 1, 1, 0]


def test_malformed_rows_and_batches_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    store = SqliteOnlineStore(tmp_path / "online.db")
    with pytest.raises(StoreError, match=r"give \(key, event_us, created_us, payload\)"):
        store.write("x", [("a", 1, 0, "[1]"), ("b", 1, 0)])  # type: ignore[list-item]
    with pytest.raises(
        StoreError, match=r"an online row is \('b', 1, 0, '\[1\]', '\?'\)"
    ):  # 5 + 3 = 2 rows
        store.write("x", [("b", 1, 0, "[1]", "?"), ("c", 1, 0)])  # type: ignore[list-item]
    with pytest.raises(StoreError, match=r"lengths \[2, 2, 1, 2\]"):
        store.write_columns("x", [(["a", "b"], [1, 1], [0], ["[1]", "[2]"])])
    with pytest.raises(StoreError, match=r"5 columns of lengths"):
        store.write_columns("x", [(["a"], [1], [0], ["[1]"]), (["b"], [1], [0], ["[2]"], ["?"])])  # type: ignore[list-item]
    assert store.read({"x": ["a", "b"]}) == {"x": [None, None]}
    store.close()


@pytest.mark.parametrize(
    ("columns", "one_type"),
    [
        ({"a": [1.5, float("nan"), None, 1e300, -0.0, 0.1], "b": [1e-320, 2.0, 3.0, None, 5.5, 7.0]}, True),
        ({"a": ['q"uo\\te', None, "é\n", "\x01", "", "x"], "b": list("abcdef")}, True),
        ({"a": [1, 2, None, 4, 5, 6], "b": [0.5, 1.5, 2.5, None, 4.5, 5.5]}, False),
    ],
)  # fmt: skip
def test_the_fast_json_of_one_typed_features_is_the_text_of_json_array(
    tmp_path: Path, columns: dict[str, list[object]], one_type: bool
) -> None:
    import duckdb

    from ctloop.features._sources import check_source

    ts = pa.array([T0 + i for i in range(6)], pa.timestamp("us"))
    pq.write_table(pa.table({"k": range(6), "ts": ts, **columns}), tmp_path / "t.parquet")
    dtype = {pa.float64(): float, pa.string(): str, pa.int64(): int}
    table = pq.read_table(tmp_path / "t.parquet")
    view = FeatureView("t", entities=[Entity("k")], source=str(tmp_path / "t.parquet"), timestamp="ts",
                       fields=[Field(n, dtype[table.schema.field(n).type]) for n in columns])  # fmt: skip
    con = duckdb.connect()
    types = check_source(view, con)
    params = {"end": END}
    fast = con.sql(_materialize.latest_rows_query(view, None, True, types), params=params)
    plain = con.sql(_materialize.latest_rows_query(view, None, True), params=params)
    # an int and a float feature in one list would both become floats: json_array then
    assert ("to_json" in _materialize.latest_rows_query(view, None, True, types)) is one_type
    assert fast.fetchall() == plain.fetchall()
    con.close()


def test_a_sqlite_write_is_in_the_database_file_when_it_returns_even_beside_a_reader(
    tmp_path: Path,
) -> None:
    import shutil

    store = SqliteOnlineStore(tmp_path / "online.db")
    assert store.write("x", [("a", 1, 0, "[1]")]) == 1
    # the database file alone (no WAL beside it) holds the row: it was checkpointed
    shutil.copy(store.path, tmp_path / "copy.db")
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute('SELECT key, payload FROM "fv_x"').fetchall() == [("a", "[1]")]
    copy.close()
    # a reader's snapshot holds the new frames in the WAL: the write still returns, and
    # the reader sees the row once its transaction ends
    reader = sqlite3.connect(store.path, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute('SELECT count(*) FROM "fv_x"').fetchall() == [(1,)]
    assert store.write("x", [("b", 1, 0, "[2]")]) == 1
    assert reader.execute('SELECT count(*) FROM "fv_x"').fetchall() == [(1,)]
    reader.execute("COMMIT")
    assert reader.execute('SELECT count(*) FROM "fv_x"').fetchall() == [(2,)]
    reader.close()
    store.close()
