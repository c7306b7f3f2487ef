"""The online store in memory, on SQLite and on a real Redis server: one contract.

:class:`OnlineStoreContract` holds the tests; each backend's class provides ``store``,
a fresh, empty one per test. The Redis tests start ``redis-server`` on a free loopback
port once per session (``scripts/install-test-deps.sh`` installs it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctloop.errors import StoreError, StoreUnavailableError
from ctloop.store._online import (
    MemoryOnlineStore,
    OnlineRow,
    OnlineStore,
    OnlineValue,
    SqliteOnlineStore,
    default_online_url,
    entity_key,
    open_online_store,
)
from ctloop.store._online_redis import RedisOnlineStore
from ctloop.store.workspace import Workspace


def row(key: str, event_us: int, payload: str = "[1.0]", created_us: int = 0) -> OnlineRow:
    return OnlineRow(key, event_us, created_us, payload)


class OnlineStoreContract:
    """Tests every online store passes."""

    @pytest.fixture
    def store(self) -> Iterator[OnlineStore]:
        raise NotImplementedError

    def test_written_rows_read_back_in_the_order_asked_and_missing_keys_are_none(
        self, store: OnlineStore
    ) -> None:
        assert store.write("weather", [row("EWR", 10, "[5.0]"), row("JFK", 20, "[6.0]")]) == 2
        assert store.read({"weather": ["JFK", "LGA", "EWR", "JFK"]}) == {
            "weather": [
                OnlineValue(20, "[6.0]"),
                None,
                OnlineValue(10, "[5.0]"),
                OnlineValue(20, "[6.0]"),
            ]
        }

    def test_a_view_never_written_reads_as_none(self, store: OnlineStore) -> None:
        assert store.read({"nothing": ["EWR"], "weather": []}) == {
            "nothing": [None],
            "weather": [],
        }

    def test_only_newer_rows_replace_stored_ones_so_a_rewrite_changes_nothing(
        self, store: OnlineStore
    ) -> None:
        store.write("weather", [row("EWR", 10, "[5.0]"), row("JFK", 10, "[6.0]")])
        assert store.write("weather", [row("EWR", 10, "[5.0]"), row("JFK", 10, "[6.0]")]) == 0
        assert store.write("weather", [row("EWR", 9, "[1.0]"), row("JFK", 11, "[7.0]")]) == 1
        assert store.write("weather", [row("EWR", 10, "[8.0]", created_us=5)]) == 1
        assert store.read({"weather": ["EWR", "JFK"]})["weather"] == [
            OnlineValue(10, "[8.0]"),
            OnlineValue(11, "[7.0]"),
        ]

    def test_views_are_kept_apart_and_a_dropped_view_is_forgotten(self, store: OnlineStore) -> None:
        store.write("weather", [row("EWR", 10, "[5.0]")])
        store.write("traffic", [row("EWR", 10, "[99]")])
        store.drop("weather")
        assert store.read({"weather": ["EWR"], "traffic": ["EWR"]}) == {
            "weather": [None],
            "traffic": [OnlineValue(10, "[99]")],
        }

    def test_a_large_write_is_read_back_whole_in_one_call(self, store: OnlineStore) -> None:
        rows = [row(f"k{i}", i + 1, f"[{i}]") for i in range(25_000)]
        assert store.write("big", iter(rows)) == 25_000
        keys = [f"k{i}" for i in range(0, 25_000, 7)]
        values = store.read({"big": keys})["big"]
        assert values == [OnlineValue(int(k[1:]) + 1, f"[{k[1:]}]") for k in keys]

    def test_keys_with_any_text_and_composite_keys_are_distinct(self, store: OnlineStore) -> None:
        odd = [entity_key(["a:b", 1]), entity_key(["a", "b:1"]), entity_key(["é ü", "*"])]
        store.write("v", [row(k, 1, f"[{i}]") for i, k in enumerate(odd)])
        assert [v.payload for v in store.read({"v": odd})["v"] if v] == ["[0]", "[1]", "[2]"]

    def test_a_failing_write_leaves_nothing_of_itself(self, store: OnlineStore) -> None:
        store.write("weather", [row("EWR", 10, "[5.0]")])

        def rows() -> Iterator[OnlineRow]:
            yield row("EWR", 20, "[9.0]")
            yield row("JFK", 20, "[9.0]")
            raise RuntimeError("the source broke")

        with pytest.raises(RuntimeError, match="the source broke"):
            store.write("weather", rows())
        assert store.read({"weather": ["EWR", "JFK"]})["weather"] == [
            OnlineValue(10, "[5.0]"),
            None,
        ]

    def test_concurrent_readers_see_a_write_whole_or_not_at_all(self, store: OnlineStore) -> None:
        keys = [f"k{i}" for i in range(2_000)]
        store.write("v", [row(k, 1, "[1]") for k in keys])
        seen: set[frozenset[str]] = set()
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                values = store.read({"v": keys})["v"]
                seen.add(frozenset(v.payload for v in values if v))

        reader = threading.Thread(target=read)
        reader.start()
        for generation in range(2, 6):
            store.write("v", [row(k, generation, f"[{generation}]") for k in keys])
        stop.set()
        reader.join()
        assert all(len(payloads) == 1 for payloads in seen)


class TestMemoryOnlineStore(OnlineStoreContract):
    """In memory."""

    @pytest.fixture
    def store(self) -> Iterator[OnlineStore]:
        yield MemoryOnlineStore()


class TestRemoteOnlineStore(OnlineStoreContract):
    """Over HTTP, through a live ``ctloop server`` on a fresh SQLite workspace."""

    @pytest.fixture
    def store(self, remote_workspace: Workspace) -> Iterator[OnlineStore]:
        yield remote_workspace.online


class TestSqliteOnlineStore(OnlineStoreContract):
    """In a SQLite file."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[OnlineStore]:
        store = SqliteOnlineStore(tmp_path / "online.db")
        yield store
        store.close()

    def test_another_process_view_of_the_file_sees_committed_rows(self, tmp_path: Path) -> None:
        SqliteOnlineStore(tmp_path / "online.db").write("weather", [row("EWR", 10, "[5.0]")])
        again = open_online_store(f"sqlite:///{tmp_path / 'online.db'}")
        assert again.read({"weather": ["EWR"]})["weather"] == [OnlineValue(10, "[5.0]")]

    def test_an_unopenable_file_is_named(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("not a folder")
        store = SqliteOnlineStore(tmp_path / "file" / "online.db")
        with pytest.raises(StoreUnavailableError, match=r"online store .*file/online\.db"):
            store.read({"weather": ["EWR"]})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the whole session."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing; run scripts/install-test-deps.sh"
    port, folder = _free_port(), tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start within 10 s"
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


class TestRedisOnlineStore(OnlineStoreContract):
    """In a real Redis server, each test under its own key prefix."""

    @pytest.fixture
    def store(self, redis_url: str, request: pytest.FixtureRequest) -> Iterator[OnlineStore]:
        store = RedisOnlineStore(f"{redis_url}?prefix=t{abs(hash(request.node.nodeid))}")
        yield store
        store.close()

    def test_a_server_that_is_not_there_is_named_with_the_fix(self) -> None:
        store = RedisOnlineStore(f"redis://127.0.0.1:{_free_port()}/0")
        with pytest.raises(StoreUnavailableError, match=r"cannot be reached .*start redis-server"):
            store.read({"weather": ["EWR"]})

    def test_each_read_path_gives_the_same_values_even_after_the_scripts_are_flushed(
        self, store: OnlineStore
    ) -> None:
        import redis

        payload = '["a \\\\"quoted\\\\" / é",1.5e-07,null]'
        store.write("odd", [row("x", 7, payload)])
        store.write("big", [row(f"k{i}", i + 1, f"[{i}]") for i in range(6_000)])
        one = store.read({"odd": ["x"]})  # a plain MGET
        both = store.read({"odd": ["x", "nope"], "big": ["k5"]})  # the script's JSON answer
        assert one["odd"] == [OnlineValue(7, payload)]
        assert both == {"odd": [OnlineValue(7, payload), None], "big": [OnlineValue(6, "[5]")]}
        many = store.read({"big": [f"k{i}" for i in range(5_000)]})["big"]  # past the script
        assert many == [OnlineValue(i + 1, f"[{i}]") for i in range(5_000)]
        assert isinstance(store, RedisOnlineStore)
        redis.Redis.from_url(store.url).script_flush()
        assert store.read({"odd": ["x", "nope"]})["odd"] == [OnlineValue(7, payload), None]

    def test_prefixes_keep_projects_apart(self, redis_url: str) -> None:
        one, two = (
            open_online_store(f"{redis_url}?prefix=one"),
            RedisOnlineStore(redis_url, prefix="two"),
        )
        one.write("weather", [row("EWR", 10, "[5.0]")])
        assert two.read({"weather": ["EWR"]})["weather"] == [None]
        assert one.read({"weather": ["EWR"]})["weather"] == [OnlineValue(10, "[5.0]")]


def test_the_default_online_store_is_a_sqlite_file_beside_the_metadata_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CTLOOP_ONLINE_STORE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    assert default_online_url(url) == f"sqlite:///{tmp_path / 'online.db'}"
    assert default_online_url("postgresql+psycopg://db/ml", home=tmp_path) == (
        f"sqlite:///{tmp_path / 'online.db'}"
    )
    with Workspace.open(url, artifacts=str(tmp_path / "artifacts")) as workspace:
        assert isinstance(workspace.online, SqliteOnlineStore)
        assert workspace.online.path == tmp_path / "online.db"
    monkeypatch.setenv("CTLOOP_ONLINE_STORE_URL", "memory://")
    assert default_online_url(url) == "memory://"
    with Workspace.in_memory() as workspace:
        assert isinstance(workspace.online, MemoryOnlineStore)


def test_an_unknown_online_store_url_is_refused_with_the_choices() -> None:
    with pytest.raises(StoreError, match="'ftp://x' is not supported; use sqlite"):
        open_online_store("ftp://x")
