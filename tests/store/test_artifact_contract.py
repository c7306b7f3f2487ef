"""The artifact store contract: every backend passes the same tests.

:class:`ArtifactStoreContract` holds the tests; each backend subclasses it and says
how to make a store, how to corrupt a blob behind the store's back, how to stall a
writer halfway through a blob, and how to make a store that cannot be reached.
The S3 store runs against a real moto server (tests/fixtures/s3.py).
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ctloop.errors import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    StoreUnavailableError,
)
from ctloop.store import ArtifactStore
from ctloop.store._fs_artifacts import (
    FsspecArtifactStore,
    LocalArtifactStore,
    open_artifact_store,
)
from ctloop.store.workspace import Workspace
from tests.fixtures.ctloop_server import LiveServer
from tests.fixtures.s3 import S3Location, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
BAD_KEYS = ["../x", "/abs", "a//b", "a\\b", "", "a/./b", "a/..", "objects/x", "tmp/x"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob_digests(store: ArtifactStore) -> set[str]:
    return {digest for digest, _, _ in store.iter_blobs()}


class ArtifactStoreContract:
    """The tests every :class:`ArtifactStore` passes."""

    @pytest.fixture
    def store(self) -> ArtifactStore:
        raise NotImplementedError

    def tamper(self, store: ArtifactStore, digest: str, data: bytes) -> None:
        """Overwrite a stored blob's bytes behind the store's back."""
        raise NotImplementedError

    @contextmanager
    def writer_stalled_halfway(
        self, store: ArtifactStore, path: Path, tmp_path: Path
    ) -> Iterator[subprocess.Popen[str]]:
        """A subprocess storing ``path`` with ``put_file``, stopped after half of the
        bytes were written; the test kills it."""
        raise NotImplementedError
        yield

    def unreachable_store(self, tmp_path: Path) -> tuple[ArtifactStore, str]:
        """A store that cannot be reached, and the place its errors must name."""
        raise NotImplementedError

    # -- blobs ---------------------------------------------------------------------

    def test_put_bytes_then_get_bytes_round_trips(self, store: ArtifactStore) -> None:
        digest = store.put_bytes(b"hello artifacts")
        assert digest == sha256(b"hello artifacts")
        assert store.has(digest)
        assert store.get_bytes(digest) == b"hello artifacts"

    def test_empty_bytes_are_a_blob_too(self, store: ArtifactStore) -> None:
        digest = store.put_bytes(b"")
        assert store.get_bytes(digest) == b""

    @pytest.mark.parametrize("size", [10, 3 * 2**20], ids=["small", "3MiB"])
    def test_put_file_returns_digest_and_size(
        self, store: ArtifactStore, tmp_path: Path, size: int
    ) -> None:
        data = os.urandom(size)
        (tmp_path / "data.bin").write_bytes(data)
        assert store.put_file(tmp_path / "data.bin") == (sha256(data), size)
        assert store.get_bytes(sha256(data)) == data

    def test_put_file_of_a_missing_file_raises_not_found(
        self, store: ArtifactStore, tmp_path: Path
    ) -> None:
        with pytest.raises(NotFoundError, match=r"missing\.bin"):
            store.put_file(tmp_path / "missing.bin")

    def test_identical_bytes_are_stored_once(self, store: ArtifactStore, tmp_path: Path) -> None:
        (tmp_path / "copy.txt").write_bytes(b"same bytes")
        first = store.put_bytes(b"same bytes")
        second = store.put_bytes(b"same bytes")
        third, _ = store.put_file(tmp_path / "copy.txt")
        store.put_bytes(b"other bytes")
        assert first == second == third
        assert sorted(d for d, _, _ in store.iter_blobs()) == sorted(
            [sha256(b"same bytes"), sha256(b"other bytes")]
        )

    def test_iter_blobs_gives_digest_size_and_utc_time(self, store: ArtifactStore) -> None:
        before = datetime.now(UTC) - timedelta(minutes=5)
        digest = store.put_bytes(b"12345")
        [(listed, size, modified)] = list(store.iter_blobs())
        assert (listed, size) == (digest, 5)
        assert modified.tzinfo is not None
        assert before <= modified <= datetime.now(UTC) + timedelta(minutes=5)

    def test_has_is_false_for_an_unknown_digest(self, store: ArtifactStore) -> None:
        assert not store.has(sha256(b"never stored"))

    def test_missing_digest_raises_not_found_naming_it(
        self, store: ArtifactStore, tmp_path: Path
    ) -> None:
        digest = sha256(b"never stored")
        with pytest.raises(NotFoundError, match=digest):
            store.get_bytes(digest)
        with pytest.raises(NotFoundError, match=digest):
            store.local_path(digest, tmp_path / "cache")

    @pytest.mark.parametrize("digest", ["abc", "../" + "a" * 61, "A" * 64, "g" * 64])
    def test_a_malformed_digest_is_refused(self, store: ArtifactStore, digest: str) -> None:
        with pytest.raises(IntegrityError, match="not a sha256 digest"):
            store.has(digest)
        with pytest.raises(IntegrityError):
            store.get_bytes(digest)

    def test_a_corrupted_blob_is_refused(self, store: ArtifactStore) -> None:
        digest = store.put_bytes(b"original bytes")
        self.tamper(store, digest, b"tampered bytes")
        with pytest.raises(IntegrityError, match=f"{digest}.*corrupt"):
            store.get_bytes(digest)

    def test_local_path_holds_the_blob_bytes_read_only(
        self, store: ArtifactStore, tmp_path: Path
    ) -> None:
        data = os.urandom(4096)
        digest = store.put_bytes(data)
        path = store.local_path(digest, tmp_path / "cache")
        assert path.read_bytes() == data
        assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        assert store.local_path(digest, tmp_path / "cache") == path

    def test_delete_blob_removes_it_and_tolerates_a_second_delete(
        self, store: ArtifactStore
    ) -> None:
        keep = store.put_bytes(b"keep")
        gone = store.put_bytes(b"gone")
        store.delete_blob(gone)
        store.delete_blob(gone)
        assert not store.has(gone)
        assert blob_digests(store) == {keep}

    def test_blob_uri_names_the_store_and_the_digest(self, store: ArtifactStore) -> None:
        digest = store.put_bytes(b"x")
        assert store.blob_uri(digest) == f"{store.url}/objects/{digest[:2]}/{digest}"

    # -- atomicity -----------------------------------------------------------------

    def test_a_writer_killed_halfway_leaves_no_blob(
        self, store: ArtifactStore, tmp_path: Path
    ) -> None:
        data = os.urandom(8 * 2**20)
        path = tmp_path / "big.bin"
        path.write_bytes(data)
        with self.writer_stalled_halfway(store, path, tmp_path) as writer:
            writer.kill()
            writer.wait(timeout=30)
        assert not store.has(sha256(data))
        assert list(store.iter_blobs()) == []
        assert store.put_file(path) == (sha256(data), len(data))  # a retry just works
        assert store.get_bytes(sha256(data)) == data

    # -- named objects -------------------------------------------------------------

    def test_named_objects_round_trip_and_overwrite(self, store: ArtifactStore) -> None:
        url = store.write_object("logs/run1/step.log", b"line 1\n")
        assert url == f"{store.url}/logs/run1/step.log"
        assert store.read_object("logs/run1/step.log") == b"line 1\n"
        store.write_object("logs/run1/step.log", b"line 1\nline 2\n")
        assert store.read_object("logs/run1/step.log") == b"line 1\nline 2\n"

    def test_named_objects_are_not_blobs(self, store: ArtifactStore) -> None:
        store.write_object("logs/run1/step.log", b"text")
        assert list(store.iter_blobs()) == []

    def test_reading_a_missing_object_raises_not_found(self, store: ArtifactStore) -> None:
        with pytest.raises(NotFoundError, match=r"logs/none\.log"):
            store.read_object("logs/none.log")

    def test_delete_prefix_removes_that_prefix_only(self, store: ArtifactStore) -> None:
        store.write_object("logs/run1/a.log", b"12345")
        store.write_object("logs/run1/sub/b.log", b"123")
        store.write_object("logs/run10/c.log", b"1")
        store.write_object("logs/run2/d.log", b"12")
        blob = store.put_bytes(b"blob")
        assert store.delete_prefix("logs/run1") == 8
        with pytest.raises(NotFoundError):
            store.read_object("logs/run1/a.log")
        assert store.read_object("logs/run10/c.log") == b"1"
        assert store.read_object("logs/run2/d.log") == b"12"
        assert store.has(blob)
        assert store.delete_prefix("logs/run2/") == 2
        assert store.delete_prefix("logs/nothing") == 0

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_keys_outside_the_store_root_are_refused(self, store: ArtifactStore, key: str) -> None:
        with pytest.raises(IntegrityError, match="key"):
            store.write_object(key, b"x")
        with pytest.raises(IntegrityError, match="key"):
            store.read_object(key)
        with pytest.raises(IntegrityError, match="key"):
            store.delete_prefix(key)

    # -- availability --------------------------------------------------------------

    def test_an_unreachable_store_raises_store_unavailable(self, tmp_path: Path) -> None:
        store, place = self.unreachable_store(tmp_path)
        with pytest.raises(StoreUnavailableError, match=place):
            store.put_bytes(b"x")
        with pytest.raises(StoreUnavailableError, match=place):
            store.write_object("logs/a.log", b"x")


# -- local folder -------------------------------------------------------------------

_LOCAL_STALLED_WRITER = """
import os, sys, time
from pathlib import Path
from ctloop.store._fs_artifacts import LocalArtifactStore

root, path, half = sys.argv[1], sys.argv[2], int(sys.argv[3])
real_write, written = os.write, 0

def write(fd, data):
    global written
    n = real_write(fd, data)
    written += n
    if written >= half:
        print("halfway", flush=True)
        time.sleep(600)
    return n

os.write = write
LocalArtifactStore(root).put_file(Path(path))
"""


def _run_script(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT / 'src'}{os.pathsep}{REPO_ROOT}"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


@contextmanager
def _stalled(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "halfway", "the writer did not stall"
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)
        assert process.stdout is not None
        process.stdout.close()


class TestLocalArtifactStore(ArtifactStoreContract):
    """The local folder store."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalArtifactStore:
        return LocalArtifactStore(tmp_path / "artifacts")

    def tamper(self, store: ArtifactStore, digest: str, data: bytes) -> None:
        assert isinstance(store, LocalArtifactStore)
        path = store.root / "objects" / digest[:2] / digest
        path.chmod(0o644)
        path.write_bytes(data)

    @contextmanager
    def writer_stalled_halfway(
        self, store: ArtifactStore, path: Path, tmp_path: Path
    ) -> Iterator[subprocess.Popen[str]]:
        assert isinstance(store, LocalArtifactStore)
        half = str(path.stat().st_size // 2)
        with _stalled(_run_script(_LOCAL_STALLED_WRITER, str(store.root), str(path), half)) as p:
            temp_files = list((store.root / "tmp").iterdir())
            assert [f.stat().st_size for f in temp_files] == [int(half)]  # really halfway
            yield p

    def unreachable_store(self, tmp_path: Path) -> tuple[ArtifactStore, str]:
        (tmp_path / "a-file").write_text("not a folder")
        return LocalArtifactStore(tmp_path / "a-file" / "artifacts"), "a-file/artifacts"

    def test_local_path_is_the_blob_itself(self, store: LocalArtifactStore, tmp_path: Path) -> None:
        digest = store.put_bytes(b"no copy")
        path = store.local_path(digest, tmp_path / "cache")
        assert path == store.root / "objects" / digest[:2] / digest
        assert not (tmp_path / "cache").exists()

    def test_a_temp_file_left_by_a_dead_writer_is_not_a_blob(
        self, store: LocalArtifactStore
    ) -> None:
        digest = store.put_bytes(b"complete")
        (store.root / "tmp").mkdir(exist_ok=True)
        (store.root / "tmp" / "0f3c2d").write_bytes(b"half of some blo")
        (store.root / "objects" / digest[:2] / f"{digest}.partial").write_bytes(b"x")
        assert blob_digests(store) == {digest}

    def test_fsync_is_opt_in(self, tmp_path: Path) -> None:
        default = open_artifact_store(str(tmp_path / "a"), {})
        assert isinstance(default, LocalArtifactStore) and not default.fsync
        store = open_artifact_store(str(tmp_path / "a"), {"fsync": True})
        assert isinstance(store, LocalArtifactStore) and store.fsync
        assert store.get_bytes(store.put_bytes(b"x")) == b"x"
        with pytest.raises(ConfigError, match="fsync"):
            open_artifact_store(str(tmp_path / "a"), {"fsync": "no"})

    def test_a_store_removed_behind_its_back_is_recreated(self, store: LocalArtifactStore) -> None:
        store.put_bytes(b"first")
        import shutil

        shutil.rmtree(store.root)
        assert store.get_bytes(store.put_bytes(b"first")) == b"first"


class TestOpenArtifactStore:
    """Choosing a backend by URL."""

    def test_a_plain_path_and_a_file_url_open_the_same_local_store(self, tmp_path: Path) -> None:
        by_path = open_artifact_store(str(tmp_path / "art"), {})
        by_url = open_artifact_store((tmp_path / "art").as_uri(), {})
        assert isinstance(by_path, LocalArtifactStore)
        assert isinstance(by_url, LocalArtifactStore)
        assert by_path.root == by_url.root == tmp_path / "art"
        assert open_artifact_store(by_path.url, {}).url == by_path.url

    def test_local_stores_ignore_options_meant_for_s3(self, tmp_path: Path) -> None:
        store = open_artifact_store(str(tmp_path), {"endpoint_url": "http://127.0.0.1:9000"})
        assert isinstance(store, LocalArtifactStore)

    def test_s3_and_memory_urls_open_fsspec_stores_lazily(self) -> None:
        s3 = open_artifact_store("s3://bucket/prefix/", {"endpoint_url": "http://127.0.0.1:1"})
        assert isinstance(s3, FsspecArtifactStore)
        assert s3.url == "s3://bucket/prefix"
        assert isinstance(open_artifact_store("memory://tests-open", {}), FsspecArtifactStore)

    def test_a_memory_store_round_trips(self, tmp_path: Path) -> None:
        store = open_artifact_store(f"memory://ctloop-tests/{os.getpid()}/{tmp_path.name}", {})
        digest = store.put_bytes(b"in memory")
        assert store.local_path(digest, tmp_path).read_bytes() == b"in memory"
        assert blob_digests(store) == {digest}

    @pytest.mark.parametrize("url", ["gs://bucket/x", "http://example.com/x", "ftp://h/x"])
    def test_an_unknown_scheme_is_a_config_error_naming_the_url(self, url: str) -> None:
        with pytest.raises(ConfigError, match=url.split("://")[0]) as caught:
            open_artifact_store(url, {})
        assert url in str(caught.value)

    @pytest.mark.parametrize("url", ["", "s3://", "file://otherhost/data"])
    def test_incomplete_urls_are_config_errors(self, url: str) -> None:
        with pytest.raises(ConfigError):
            open_artifact_store(url, {})


# -- S3 (moto server) -----------------------------------------------------------------

_S3_WRITER = """
import json, sys
from pathlib import Path
from ctloop.store._fs_artifacts import FsspecArtifactStore

url, options, path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
FsspecArtifactStore(url, options).put_file(Path(path))
"""


class _StallingProxy:
    """A TCP proxy to the S3 server that forwards requests only until ``limit`` bytes
    went through, then holds every connection open without forwarding more: the
    server has received half a PUT when the writer is killed."""

    def __init__(self, upstream_port: int, limit: int) -> None:
        self.limit = limit
        self.forwarded = 0
        self.stalled = threading.Event()
        self._upstream_port = upstream_port
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, limited: bool) -> None:
        try:
            while data := source.recv(65536):
                if limited:
                    with self._lock:
                        data = data[: max(0, self.limit - self.forwarded)]
                        self.forwarded += len(data)
                    if self.forwarded >= self.limit:
                        sink.sendall(data)
                        self.stalled.set()
                        return
                sink.sendall(data)
        except OSError:
            return

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()


class TestS3ArtifactStore(ArtifactStoreContract):
    """The S3 store, against a moto server on 127.0.0.1."""

    @pytest.fixture
    def store(self, s3_location: S3Location) -> FsspecArtifactStore:
        return FsspecArtifactStore(s3_location.url, s3_location.options)

    @pytest.fixture
    def location(self, s3_location: S3Location) -> S3Location:
        return s3_location

    def tamper(self, store: ArtifactStore, digest: str, data: bytes) -> None:
        assert isinstance(store, FsspecArtifactStore)
        bucket, _, prefix = store.url.removeprefix("s3://").partition("/")
        store.fs.pipe_file(f"{bucket}/{prefix}/objects/{digest[:2]}/{digest}", data)

    @contextmanager
    def writer_stalled_halfway(
        self, store: ArtifactStore, path: Path, tmp_path: Path
    ) -> Iterator[subprocess.Popen[str]]:
        import json

        assert isinstance(store, FsspecArtifactStore)
        endpoint = store.endpoint
        proxy = _StallingProxy(int(endpoint.rsplit(":", 1)[1]), path.stat().st_size // 2)
        options = json.dumps({"endpoint_url": f"http://127.0.0.1:{proxy.port}"})
        writer = _run_script(_S3_WRITER, store.url, options, str(path))
        try:
            assert proxy.stalled.wait(timeout=60), "the upload never got halfway"
            yield writer
        finally:
            writer.kill()
            writer.wait(timeout=30)
            proxy.close()
            assert writer.stdout is not None
            writer.stdout.close()

    def unreachable_store(self, tmp_path: Path) -> tuple[ArtifactStore, str]:
        endpoint = f"http://127.0.0.1:{free_port()}"
        return FsspecArtifactStore("s3://bucket/prefix", {"endpoint_url": endpoint}), endpoint

    def test_local_path_downloads_into_the_cache_once(
        self, store: FsspecArtifactStore, tmp_path: Path
    ) -> None:
        digest = store.put_bytes(b"remote bytes")
        path = store.local_path(digest, tmp_path / "cache")
        assert path == tmp_path / "cache" / digest[:2] / digest
        store.delete_blob(digest)  # the verified cached copy is reused, no download
        assert store.local_path(digest, tmp_path / "cache").read_bytes() == b"remote bytes"

    def test_local_path_refuses_a_corrupted_download_and_caches_nothing(
        self, store: FsspecArtifactStore, tmp_path: Path
    ) -> None:
        digest = store.put_bytes(b"original")
        self.tamper(store, digest, b"tampered")
        with pytest.raises(IntegrityError, match=digest):
            store.local_path(digest, tmp_path / "cache")
        assert list((tmp_path / "cache").rglob("*")) == [tmp_path / "cache" / digest[:2]]

    def test_a_large_file_is_uploaded_from_disk(
        self, store: FsspecArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import ctloop.store._fs_artifacts as fs_artifacts

        monkeypatch.setattr(fs_artifacts, "_REMOTE_IN_MEMORY", 1024)
        data = os.urandom(300_000)
        (tmp_path / "big.bin").write_bytes(data)
        assert store.put_file(tmp_path / "big.bin") == (sha256(data), len(data))
        assert store.put_file(tmp_path / "big.bin") == (sha256(data), len(data))
        assert store.get_bytes(sha256(data)) == data
        assert len(blob_digests(store)) == 1

    def test_a_missing_bucket_is_named(self, location: S3Location) -> None:
        store = FsspecArtifactStore("s3://no-such-bucket/x", location.options)
        with pytest.raises(StoreUnavailableError, match="no-such-bucket"):
            store.put_bytes(b"x")

    def test_an_unreachable_endpoint_fails_reads_too(self, tmp_path: Path) -> None:
        store, endpoint = self.unreachable_store(tmp_path)
        with pytest.raises(StoreUnavailableError, match=endpoint):
            store.has(sha256(b"x"))

    def test_the_store_works_again_after_a_fork(self, store: FsspecArtifactStore) -> None:
        digest = store.put_bytes(b"before fork")
        with warnings.catch_warnings():
            # Python 3.12+ warns that forking a threaded process may deadlock; the
            # point of this test is that the store recovers in such a child
            warnings.filterwarnings("ignore", "This process .* fork", DeprecationWarning)
            child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            code = 0 if store.get_bytes(digest) == b"before fork" else 1
            os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0

    def test_options_reach_s3fs(self, location: S3Location) -> None:
        options: dict[str, Any] = {**location.options, "region_name": "eu-west-1"}
        store = FsspecArtifactStore(location.url, options)
        assert store.fs.client_kwargs["region_name"] == "eu-west-1"
        assert store.get_bytes(store.put_bytes(b"ok")) == b"ok"


# -- over HTTP ----------------------------------------------------------------------

_REMOTE_STALLED_WRITER = """
import sys, time
from pathlib import Path
import ctloop.store._remote as remote
from ctloop.store.workspace import Workspace

url, path, half = sys.argv[1], sys.argv[2], int(sys.argv[3])
real_chunks = remote._chunks
remote._CHUNK = 64 * 1024

def chunks(path):
    sent = 0
    for chunk in real_chunks(path):
        yield chunk
        sent += len(chunk)
        if sent >= half:
            print("halfway", flush=True)
            time.sleep(600)

remote._chunks = chunks
Workspace.remote(url).artifacts.put_file(Path(path))
"""


class TestRemoteArtifactStore(ArtifactStoreContract):
    """Over HTTP, through a live ``ctloop server`` whose artifact store is a local folder:
    blob bytes stream both ways in chunks, verified on arrival."""

    @pytest.fixture
    def store(self, remote_workspace: Workspace) -> ArtifactStore:
        return remote_workspace.artifacts

    @pytest.fixture
    def behind(self, served_workspace: Workspace) -> LocalArtifactStore:
        assert isinstance(served_workspace.artifacts, LocalArtifactStore)
        return served_workspace.artifacts

    @pytest.fixture(autouse=True)
    def _remember(self, behind: LocalArtifactStore, live_server: LiveServer) -> None:
        self._behind, self._url = behind, live_server.url

    def tamper(self, store: ArtifactStore, digest: str, data: bytes) -> None:
        TestLocalArtifactStore().tamper(self._behind, digest, data)

    @contextmanager
    def writer_stalled_halfway(
        self, store: ArtifactStore, path: Path, tmp_path: Path
    ) -> Iterator[subprocess.Popen[str]]:
        half = str(path.stat().st_size // 2)
        with _stalled(_run_script(_REMOTE_STALLED_WRITER, self._url, str(path), half)) as p:
            yield p

    def unreachable_store(self, tmp_path: Path) -> tuple[ArtifactStore, str]:
        url = f"http://127.0.0.1:{free_port()}"
        return Workspace.remote(url).artifacts, url

    def test_blob_uri_is_where_the_server_keeps_the_blob(
        self, store: ArtifactStore, behind: LocalArtifactStore
    ) -> None:
        digest = store.put_bytes(b"x")
        assert store.url == behind.url
        assert store.blob_uri(digest) == behind.blob_uri(digest)

    def test_a_download_is_cached_and_read_only(
        self, store: ArtifactStore, behind: LocalArtifactStore, tmp_path: Path
    ) -> None:
        digest = store.put_bytes(os.urandom(3 * 2**20))
        path = store.local_path(digest, tmp_path / "cache")
        assert path.parent.parent == tmp_path / "cache"
        assert path.read_bytes() == behind.get_bytes(digest)
        assert not path.stat().st_mode & stat.S_IWUSR
