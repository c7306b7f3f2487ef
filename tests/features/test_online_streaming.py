"""Writes streamed into the online stores batch by batch: the newest row of a key wins
whatever batch it comes in, on every store; a Redis write sends each batch before the
next is made (so it holds a batch or two, never the whole load), keeps the batches it
sent when the rows fail part way, and finishes when the same rows are written again."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctloop.errors import StoreError, StoreUnavailableError
from ctloop.features import Entity, FeatureView, Field, _materialize, materialize
from ctloop.store import _online as online
from ctloop.store import _online_redis
from ctloop.store._online import (
    Columns,
    MemoryOnlineStore,
    OnlineStore,
    OnlineValue,
    SqliteOnlineStore,
)
from ctloop.store._online_redis import RedisOnlineStore
from ctloop.store.workspace import Workspace

T0 = 1_700_000_000_000_000  # microseconds


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineStore]:
    made: OnlineStore
    if request.param == "memory":
        made = MemoryOnlineStore()
    elif request.param == "sqlite":
        made = SqliteOnlineStore(tmp_path / "online.db")
    else:
        url = request.getfixturevalue("redis_url")
        made = RedisOnlineStore(url, prefix=f"stream{abs(hash(request.node.nodeid))}")
    yield made
    made.close()


@pytest.fixture
def redis_store(redis_url: str, request: pytest.FixtureRequest) -> Iterator[RedisOnlineStore]:
    made = RedisOnlineStore(redis_url, prefix=f"stream{abs(hash(request.node.nodeid))}")
    yield made
    made.close()


def shuffled_load(rows: int, keys: int, batch: int, seed: int = 0) -> tuple[list[Columns], dict[str, str]]:  # fmt: skip
    """``rows`` rows of ``keys`` keys in random order, cut into batches of ``batch``, and
    the payload of each key's newest row (event time, then created time)."""
    rng = np.random.default_rng(seed)
    key = [f"k{k}" for k in rng.integers(0, keys, rows)]
    event = (T0 + rng.integers(0, 50, rows) * 1_000_000).tolist()  # ties of event time
    created = rng.permutation(rows).tolist()  # broken by the created time
    payload = [f"[{i}]" for i in range(rows)]
    newest: dict[str, tuple[int, int, str]] = {}
    for k, e, c, p in zip(key, event, created, payload, strict=True):
        if k not in newest or (e, c) > newest[k][:2]:
            newest[k] = (e, c, p)
    batches: list[Columns] = [
        (key[i : i + batch], event[i : i + batch], created[i : i + batch], payload[i : i + batch])
        for i in range(0, rows, batch)
    ]
    return batches, {k: p for k, (_, _, p) in newest.items()}


def payloads(store: OnlineStore, view: str, keys: list[str]) -> dict[str, str | None]:
    values = store.read({view: keys})[view]
    return {k: v.payload if v else None for k, v in zip(keys, values, strict=True)}


def test_an_older_row_in_a_later_batch_does_not_replace_the_newer_one(
    store: OnlineStore,
) -> None:
    newer = (["EWR", "JFK"], [T0 + 10, T0 + 10], [0, 0], ["[2.0]", "[3.0]"])
    older = (["EWR", "LGA"], [T0 + 5, T0 + 5], [0, 0], ["[1.0]", "[4.0]"])
    same_time_later_created = (["JFK"], [T0 + 10], [7], ["[3.5]"])
    assert store.write_columns("w", [newer, older, same_time_later_created]) == 4
    assert payloads(store, "w", ["EWR", "JFK", "LGA"]) == {
        "EWR": "[2.0]",
        "JFK": "[3.5]",
        "LGA": "[4.0]",
    }
    # the same within one batch, and through write: the newest row of a key counts
    assert store.write("w", [("SFO", T0 + 9, 0, "[9]"), ("SFO", T0 + 1, 0, "[1]")]) >= 1
    assert payloads(store, "w", ["SFO"]) == {"SFO": "[9]"}


def test_a_load_over_many_batches_ends_with_each_keys_newest_row(
    store: OnlineStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(online, "BATCH", 300)  # batches longer than this are sent in parts
    monkeypatch.setattr(_online_redis, "BATCH", 300)
    monkeypatch.setattr(_online_redis, "SCRIPT_ROWS", 64)
    batches, newest = shuffled_load(rows=6_000, keys=700, batch=450)
    store.write_columns("load", batches)
    keys = sorted(newest)
    assert payloads(store, "load", keys) == newest
    # every row again, in the reverse order: nothing is newer, nothing changes
    again = [tuple(column[::-1] for column in batch) for batch in reversed(batches)]
    assert store.write_columns("load", again) == 0  # type: ignore[arg-type]
    assert payloads(store, "load", keys) == newest


def test_a_redis_write_sends_each_batch_before_the_next_one_is_made(
    redis_store: RedisOnlineStore, redis_url: str
) -> None:
    other = RedisOnlineStore(redis_url, prefix=redis_store.prefix)
    seen: list[dict[str, str | None]] = []

    def batches() -> Iterator[Columns]:
        for n in range(4):
            if n >= 2:  # batch n - 2 has been answered: its rows are on the server
                seen.append(payloads(other, "v", [f"b{n - 2}"]))
            yield ([f"b{n}"], [T0 + n], [0], [f"[{n}]"])

    assert redis_store.write_columns("v", batches()) == 4
    assert seen == [{"b0": "[0]"}, {"b1": "[1]"}]
    other.close()


def test_a_redis_write_failing_part_way_keeps_what_it_sent_and_a_rerun_finishes_it(
    redis_store: RedisOnlineStore,
) -> None:
    rows = [(f"k{i}", T0 + i, 0, f"[{i}]") for i in range(6)]

    def failing() -> Iterator[Columns]:
        for i in range(0, 4, 2):
            yield tuple(list(column) for column in zip(*rows[i : i + 2], strict=True))  # type: ignore[misc]
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError, match="the source broke"):
        redis_store.write_columns("v", failing())
    stored = payloads(redis_store, "v", [r[0] for r in rows])
    assert stored == {"k0": "[0]", "k1": "[1]", "k2": "[2]", "k3": "[3]", "k4": None, "k5": None}
    assert redis_store.write("v", rows) == 2
    assert payloads(redis_store, "v", ["k4", "k5"]) == {"k4": "[4]", "k5": "[5]"}


def test_malformed_batches_and_an_absent_server_are_named(
    redis_store: RedisOnlineStore,
) -> None:
    with pytest.raises(StoreError, match=r"columns of lengths \[2, 1, 1, 1\]"):
        redis_store.write_columns("v", [(["a", "b"], [1], [0], ["[1]"])])
    with pytest.raises(StoreError, match=r"an online row is \('a', 1\)"):
        redis_store.write("v", [("a", 1)])  # type: ignore[list-item]
    assert redis_store.read({"v": ["a"]})["v"] == [None]
    absent = RedisOnlineStore("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailableError, match=r"writing feature view 'v'; start redis"):
        absent.write("v", [("a", 1, 0, "[1]")])


def test_materializing_into_redis_in_many_batches_gives_the_sqlite_values(
    redis_store: RedisOnlineStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_materialize, "FETCH", 97)
    monkeypatch.setattr(_online_redis, "SCRIPT_ROWS", 10)
    rng = np.random.default_rng(5)
    rows = 3_000
    pq.write_table(
        pa.table({
            "k": rng.permutation(np.arange(rows) % 400),
            "ts": pa.array(T0 + rng.permutation(rows) * 1_000_000, pa.timestamp("us")),
            "x": rng.normal(size=rows),
        }),
        tmp_path / "x.parquet",
    )  # fmt: skip
    view = FeatureView("x", entities=[Entity("k")], source=str(tmp_path / "x.parquet"),
                       timestamp="ts", fields=[Field("x", float)])  # fmt: skip
    end = datetime(2030, 1, 1)
    sqlite = SqliteOnlineStore(tmp_path / "online.db")
    with Workspace.in_memory(tmp_path / "artifacts") as ws:
        [on_redis] = materialize(dataclasses.replace(ws, online=redis_store), [view], end=end)
        [on_sqlite] = materialize(dataclasses.replace(ws, online=sqlite), [view], end=end)
        [again] = materialize(dataclasses.replace(ws, online=redis_store), [view], end=end)
    assert on_redis.rows_written == on_sqlite.rows_written == on_redis.rows_read
    assert again.rows_written == 0
    keys = [str(k) for k in range(400)]
    from_redis, from_sqlite = (s.read({"x": keys})["x"] for s in (redis_store, sqlite))
    assert from_redis == from_sqlite
    assert all(isinstance(v, OnlineValue) and json.loads(v.payload) for v in from_redis)
    sqlite.close()
