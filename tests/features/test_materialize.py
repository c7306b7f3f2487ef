"""Materialization's query and its streaming into a real SQLite online store: the latest
row per key across many fetched batches, composite keys beside a source column that
happens to be called ``key``, and the cyclic collector left as it was found."""

from __future__ import annotations

import dataclasses
import gc
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctloop.errors import FeatureError
from ctloop.features import Entity, FeatureView, Field, _materialize, materialize
from ctloop.store.online import SqliteOnlineStore, entity_key
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
