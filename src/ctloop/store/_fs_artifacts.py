"""Artifact stores on a local folder and on anything fsspec speaks (S3 first).

:class:`LocalArtifactStore` uses plain ``os`` calls because it sits on the hot path of
every step: a blob is written to ``<root>/tmp/<uuid>`` on the same filesystem, synced,
made read-only and moved into ``objects/<aa>/<digest>`` with ``os.replace``.
:class:`FsspecArtifactStore` writes every blob and object with a single put, which an
object store publishes whole or not at all, and verifies what it downloads.

Pick one by URL with :func:`open_artifact_store`::

    store = open_artifact_store("s3://ml-artifacts/ctloop", {"endpoint_url": "http://127.0.0.1:9000"})
    digest = store.put_bytes(b"hello")
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ctloop.errors import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from ctloop.store._checks import matching
from ctloop.store.artifact_store import ArtifactStore

__all__ = ["FsspecArtifactStore", "LocalArtifactStore", "open_artifact_store"]

_DIGEST = re.compile(r"[0-9a-f]{64}")
#: top-level folders that hold blobs and temp files, never named objects
_RESERVED = ("objects", "tmp")
#: files up to this size are read once and stored from memory
_SMALL_FILE = 1 << 20
#: remote uploads up to this size go from memory, so the bytes sent are the bytes hashed
_REMOTE_IN_MEMORY = 32 << 20
_CHUNK = 1 << 20
_sync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is a sha256 hex digest, else raise IntegrityError."""
    return matching(
        digest,
        _DIGEST,
        lambda: IntegrityError(
            f"{digest!r} is not a sha256 digest; pass the 64 lowercase hex characters "
            "that put_bytes or put_file returned"
        ),
    )


def put_file_with(
    store: ArtifactStore,
    path: Path,
    in_memory: int,
    put_large: Callable[[str, int], tuple[str, int]],
) -> tuple[str, int]:
    """Store the file ``path`` in ``store`` (``(digest, size)``): read into memory up to
    ``in_memory`` bytes; larger, hashed first and stored by ``put_large(digest, size)``
    unless that blob is stored already."""
    size = _source_size(path)
    if size <= in_memory:
        with open(path, "rb") as f:
            data = f.read()
        return store.put_bytes(data), len(data)
    digest = _file_sha256(path)
    if store.has(digest):
        return digest, size
    return put_large(digest, size)


def cached_copy(digest: str, cache_dir: Path, download: Callable[[Path], None]) -> Path:
    """A read-only copy of blob ``digest`` in ``cache_dir/<aa>/<digest>``, made once:
    ``download(tmp)`` writes and verifies it under a temporary name, then it is renamed
    into place (so that name only ever holds verified bytes)."""
    target = Path(cache_dir) / digest[:2] / check_digest(digest)
    if target.exists():  # only verified downloads are ever renamed to this name
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{digest}.{uuid.uuid4().hex}.tmp"
    try:
        download(tmp)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
    finally:
        _unlink_quietly(os.fspath(tmp))
    return target


def check_key(key: str) -> str:
    """Return ``key`` if it stays inside the store root, else raise IntegrityError.

    A key is a relative, ``/``-separated path with no empty, ``.`` or ``..`` segment,
    no backslash, and not under the reserved ``objects/`` or ``tmp/`` folders.
    """
    if not isinstance(key, str) or not key:
        raise IntegrityError(f"object key {key!r} is empty; use a path like 'logs/run/step.log'")
    segments = key.split("/")
    bad = (
        key.startswith("/")
        or "\\" in key
        or "\x00" in key
        or any(s in ("", ".", "..") for s in segments)
    )
    if bad:
        raise IntegrityError(
            f"object key {key!r} could escape the store root; use a relative path of "
            "non-empty segments joined by '/', without '..', '.' or backslashes"
        )
    if segments[0] in _RESERVED:
        raise IntegrityError(
            f"object key {key!r} lies in the store's reserved folder '{segments[0]}/'; "
            "choose a key outside 'objects/' and 'tmp/'"
        )
    return key


def _check_prefix(prefix: str) -> str:
    return check_key(prefix[:-1] if isinstance(prefix, str) and prefix.endswith("/") else prefix)


def _verify(digest: str, data: bytes, where: str) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise IntegrityError(
            f"blob {digest} in {where} is corrupt: its bytes hash to {actual}; delete it "
            "and re-run the step that wrote it"
        )
    return data


def _file_sha256(path: Path | str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LocalArtifactStore(ArtifactStore):
    """Blobs in a local folder; the default store (``.ctloop/artifacts``).

    >>> store = LocalArtifactStore(tmp_path / "artifacts")  # doctest: +SKIP
    >>> store.get_bytes(store.put_bytes(b"hi"))  # doctest: +SKIP
    b'hi'

    Blobs are read-only files; :meth:`local_path` hands out the blob itself, so
    reading an artifact copies nothing. Temp files of writers that died stay in
    ``tmp/`` and are never seen as blobs. Like git and DVC, writes are not synced to
    disk by default: they stay atomic for readers and for killed writers, but a power
    cut may lose the latest blobs; ``fsync=True`` (store option ``fsync: true``) syncs
    every write, at 0.5 to 5 ms each on common disks.
    """

    def __init__(self, root: Path | str, *, fsync: bool = False) -> None:
        self.root = Path(os.path.abspath(root))
        self.fsync = fsync
        self.url = self.root.as_uri()
        self._objects = os.path.join(self.root, "objects")
        self._tmp = os.path.join(self.root, "tmp")
        self._made_dirs: set[str] = set()

    def __repr__(self) -> str:
        return f"LocalArtifactStore({str(self.root)!r})"

    # -- blobs ---------------------------------------------------------------------

    def _blob_path(self, digest: str) -> str:
        check_digest(digest)
        return os.path.join(self._objects, digest[:2], digest)

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; returns their sha256 digest."""
        digest = hashlib.sha256(data).hexdigest()
        target = self._blob_path(digest)
        if not os.path.exists(target):
            self._publish(target, lambda fd: _write_all(fd, data), mode=0o444)
        return digest

    def put_file(self, path: Path) -> tuple[str, int]:
        """Store a local file's bytes; returns ``(sha256 digest, size)``."""
        return put_file_with(self, path, _SMALL_FILE, lambda _digest, _size: self._copy_in(path))

    def _copy_in(self, path: Path) -> tuple[str, int]:
        """Copy a big file into a temp file, hashing the bytes actually copied, so a
        file that changes meanwhile is stored under the digest of what was stored."""
        hasher = hashlib.sha256()
        size = 0

        def copy(fd: int) -> None:
            nonlocal size
            buffer = bytearray(_CHUNK)
            with open(path, "rb") as source:
                while n := source.readinto(buffer):
                    chunk = memoryview(buffer)[:n]
                    hasher.update(chunk)
                    _write_all(fd, chunk)
                    size += n

        tmp = self._write_temp(copy, mode=0o444)
        digest = hasher.hexdigest()
        self._move_into_place(tmp, self._blob_path(digest))
        return digest, size

    def has(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""
        return os.path.exists(self._blob_path(digest))

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of a blob, verified against the digest."""
        try:
            with open(self._blob_path(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise self._missing_blob(digest) from None
        return _verify(digest, data, self.url)

    def local_path(self, digest: str, cache_dir: Path) -> Path:
        """The blob file itself (read-only); ``cache_dir`` is not needed locally."""
        path = self._blob_path(digest)
        if not os.path.exists(path):
            raise self._missing_blob(digest)
        return Path(path)

    def clean_temp(self, older_than: timedelta) -> int:
        """Remove temp files of dead writers older than ``older_than``; bytes freed."""
        cutoff = time.time() - older_than.total_seconds()
        freed = 0
        try:
            entries = list(os.scandir(self._tmp))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
                if info.st_mtime < cutoff and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    freed += info.st_size
            except FileNotFoundError:
                continue
        return freed

    def iter_blobs(self) -> Iterator[tuple[str, int, datetime]]:
        """Every stored blob as ``(digest, size, modified time UTC)``."""
        for folder in _scandir(self._objects):
            if not folder.is_dir() or len(folder.name) != 2:
                continue
            for entry in _scandir(folder.path):
                if _DIGEST.fullmatch(entry.name) and entry.name[:2] == folder.name:
                    st = entry.stat()
                    yield entry.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)

    def delete_blob(self, digest: str) -> None:
        """Delete a blob (no error if it is already gone)."""
        path = self._blob_path(digest)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except PermissionError:  # Windows refuses to unlink read-only files
            os.chmod(path, 0o644)
            os.unlink(path)

    def _missing_blob(self, digest: str) -> NotFoundError:
        return NotFoundError(
            f"blob {digest} is not in the artifact store at {self.url}; it was deleted "
            "or never written: re-run the step that produced it"
        )

    # -- named objects -------------------------------------------------------------

    def write_object(self, key: str, data: bytes) -> str:
        """Atomically write a named object; returns its URL."""
        target = os.path.join(self.root, check_key(key))
        self._publish(target, lambda fd: _write_all(fd, data), mode=0o644)
        return f"{self.url}/{key}"

    def read_object(self, key: str) -> bytes:
        """Read a named object."""
        try:
            with open(os.path.join(self.root, check_key(key)), "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(
                f"object {key!r} is not in the artifact store at {self.url}"
            ) from None

    def delete_prefix(self, prefix: str) -> int:
        """Delete every named object under ``prefix``; returns how many bytes were freed."""
        path = os.path.join(self.root, _check_prefix(prefix))
        if os.path.isfile(path):
            size = os.path.getsize(path)
            os.unlink(path)
            return size
        freed = 0
        for folder, _, names in os.walk(path):
            freed += sum(os.path.getsize(os.path.join(folder, n)) for n in names)
        shutil.rmtree(path, ignore_errors=True)
        return freed

    # -- atomic writes -------------------------------------------------------------

    def _publish(self, target: str, write: Callable[[int], None], *, mode: int) -> None:
        self._move_into_place(self._write_temp(write, mode=mode), target)

    def _write_temp(self, write: Callable[[int], None], *, mode: int) -> str:
        tmp = os.path.join(self._tmp, uuid.uuid4().hex)
        try:
            self._ensure_dir(self._tmp)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileNotFoundError:  # the tmp folder was removed since we made it
            self._made_dirs.discard(self._tmp)
            self._ensure_dir(self._tmp)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        try:
            try:
                write(fd)
                if self.fsync:
                    _sync(fd)
            finally:
                os.close(fd)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return tmp

    def _move_into_place(self, tmp: str, target: str) -> None:
        folder = os.path.dirname(target)
        try:
            self._ensure_dir(folder)
            try:
                os.replace(tmp, target)
            except FileNotFoundError:  # the folder was removed since we made it
                self._made_dirs.discard(folder)
                self._ensure_dir(folder)
                os.replace(tmp, target)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def _ensure_dir(self, path: str) -> None:
        if path in self._made_dirs:
            return
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise self._unwritable(exc) from exc
        self._made_dirs.add(path)

    def _unwritable(self, exc: OSError) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the artifact store folder {self.root} cannot be written ({exc.strerror or exc}); "
            "check that it is a writable folder or set CTLOOP_ARTIFACT_URL to another one"
        )


def _source_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        raise NotFoundError(
            f"file {path} does not exist, so it cannot be stored; check the path"
        ) from None


def _scandir(path: str) -> Iterator[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            yield from entries
    except (FileNotFoundError, NotADirectoryError):
        return


def _unlink_quietly(path: str) -> None:
    with suppress(OSError):
        os.unlink(path)


class FsspecArtifactStore(ArtifactStore):
    """Blobs in an object store reached through fsspec: ``s3://bucket/prefix`` (s3fs)
    or ``memory://name`` (in-process, for tests).

    ``options`` go to the filesystem: for S3 ``endpoint_url``, ``key``, ``secret``,
    ``token``, ``region_name`` and any other s3fs option. Anything not given comes
    from the usual ``AWS_*`` environment variables and AWS config files.

    >>> store = FsspecArtifactStore("s3://ml/ctloop", {"endpoint_url": "http://127.0.0.1:9000"})  # doctest: +SKIP
    >>> path = store.local_path(digest, cache_dir)  # verified download  # doctest: +SKIP
    """

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        protocol, _, rest = url.partition("://")
        self.protocol = protocol
        self.url = f"{protocol}://{rest.strip('/')}"
        self._root = rest.strip("/")
        if not self._root:
            raise ConfigError(
                f"artifact store URL {url!r} names no bucket; use {protocol}://bucket/prefix"
            )
        self._options = dict(options or {})
        self._fs: Any = None
        self._fs_pid = -1
        self._unavailable: tuple[type[BaseException], ...] = (OSError,)

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self.url!r})"

    @property
    def endpoint(self) -> str:
        """The server this store talks to, for messages."""
        if self.protocol != "s3":
            return f"{self.protocol}://"
        client_kwargs = self._options.get("client_kwargs") or {}
        return str(
            self._options.get("endpoint_url")
            or client_kwargs.get("endpoint_url")
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or "the default AWS S3 endpoint"
        )

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, created on first use and again after a fork."""
        if self._fs is None or self._fs_pid != os.getpid():
            self._fs = _make_filesystem(self.protocol, self._options)
            self._fs_pid = os.getpid()
            self._unavailable = _unavailable_errors()
        return self._fs

    def _blob_key(self, digest: str) -> str:
        check_digest(digest)
        return f"{self._root}/objects/{digest[:2]}/{digest}"

    @contextmanager
    def _remote(self, action: str) -> Iterator[Any]:
        """Yield the filesystem; turn connection and permission failures into
        StoreUnavailableError naming the endpoint. FileNotFoundError passes through."""
        fs = self.fs
        try:
            yield fs
        except (FileNotFoundError, StoreError):
            raise
        except PermissionError as exc:
            raise StoreUnavailableError(
                f"access to the artifact store {self.url} at {self.endpoint} was denied "
                f"while {action} ({exc}); check the credentials (the 'key'/'secret' "
                "options or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
            ) from exc
        except self._unavailable as exc:
            raise StoreUnavailableError(
                f"the artifact store {self.url} at {self.endpoint} could not be reached "
                f"while {action} ({exc}); check that the endpoint is up and the "
                "'endpoint_url' option (or CTLOOP_S3_ENDPOINT_URL) is right"
            ) from exc

    # -- blobs ---------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        """Store bytes with a single put; returns their sha256 digest."""
        digest = hashlib.sha256(data).hexdigest()
        if not self.has(digest):
            self._put(self._blob_key(digest), data)
        return digest

    def _put(self, rpath: str, data: bytes) -> None:
        try:
            with self._remote(f"writing {rpath}") as fs:
                fs.pipe_file(rpath, data)
        except FileNotFoundError as exc:
            raise self._no_bucket(exc) from exc

    def put_file(self, path: Path) -> tuple[str, int]:
        """Store a local file's bytes; returns ``(sha256 digest, size)``."""
        return put_file_with(
            self, path, _REMOTE_IN_MEMORY, lambda digest, size: self._upload(path, digest, size)
        )

    def _upload(self, path: Path, digest: str, size: int) -> tuple[str, int]:
        """Upload a big file straight from disk, then check it did not change meanwhile."""
        rpath = self._blob_key(digest)
        try:
            with self._remote(f"uploading {path}") as fs:
                fs.put_file(os.fspath(path), rpath)
        except FileNotFoundError as exc:
            raise self._no_bucket(exc) from exc
        if _file_sha256(path) != digest:
            self.delete_blob(digest)
            raise IntegrityError(
                f"file {path} changed while it was uploaded to {self.url}; the upload "
                "was removed: store it again once nothing writes to it"
            )
        return digest, size

    def has(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""
        rpath = self._blob_key(digest)
        with self._remote(f"looking up blob {digest}") as fs:
            return bool(fs.exists(rpath))

    def get_bytes(self, digest: str) -> bytes:
        """The bytes of a blob, verified against the digest."""
        rpath = self._blob_key(digest)
        try:
            with self._remote(f"reading blob {digest}") as fs:
                data = fs.cat_file(rpath)
        except FileNotFoundError:
            raise self._missing_blob(digest) from None
        return _verify(digest, data, self.url)

    def local_path(self, digest: str, cache_dir: Path) -> Path:
        """A verified, read-only copy in ``cache_dir/<aa>/<digest>``, downloaded once."""
        return cached_copy(digest, cache_dir, lambda tmp: self._download(digest, tmp))

    def _download(self, digest: str, tmp: Path) -> None:
        try:
            with self._remote(f"downloading blob {digest}") as fs:
                fs.get_file(self._blob_key(digest), os.fspath(tmp))
        except FileNotFoundError:
            raise self._missing_blob(digest) from None
        actual = _file_sha256(tmp)
        if actual != digest:
            raise IntegrityError(
                f"blob {digest} in {self.url} is corrupt: its bytes hash to {actual}; "
                "delete it and re-run the step that wrote it"
            )

    def iter_blobs(self) -> Iterator[tuple[str, int, datetime]]:
        """Every stored blob as ``(digest, size, modified time UTC)``."""
        with self._remote("listing blobs") as fs:
            found = fs.find(f"{self._root}/objects", detail=True)
        for name, info in found.items():
            parent, _, digest = name.rpartition("/")
            if _DIGEST.fullmatch(digest) and parent.endswith(f"/objects/{digest[:2]}"):
                yield digest, int(info["size"]), _modified(info)

    def delete_blob(self, digest: str) -> None:
        """Delete a blob (no error if it is already gone)."""
        rpath = self._blob_key(digest)
        try:
            with self._remote(f"deleting blob {digest}") as fs:
                fs.rm_file(rpath)
        except FileNotFoundError:
            pass

    def _missing_blob(self, digest: str) -> NotFoundError:
        return NotFoundError(
            f"blob {digest} is not in the artifact store at {self.url}; it was deleted "
            "or never written: re-run the step that produced it"
        )

    def _no_bucket(self, exc: Exception) -> StoreUnavailableError:
        bucket = self._root.split("/")[0]
        return StoreUnavailableError(
            f"the bucket {bucket!r} of the artifact store {self.url} does not exist at "
            f"{self.endpoint} ({exc}); create it or fix CTLOOP_ARTIFACT_URL"
        )

    # -- named objects -------------------------------------------------------------

    def write_object(self, key: str, data: bytes) -> str:
        """Write a named object with a single put; returns its URL."""
        self._put(f"{self._root}/{check_key(key)}", data)
        return f"{self.url}/{key}"

    def read_object(self, key: str) -> bytes:
        """Read a named object."""
        rpath = f"{self._root}/{check_key(key)}"
        try:
            with self._remote(f"reading {key}") as fs:
                return bytes(fs.cat_file(rpath))
        except (FileNotFoundError, IsADirectoryError):
            raise NotFoundError(
                f"object {key!r} is not in the artifact store at {self.url}"
            ) from None

    def delete_prefix(self, prefix: str) -> int:
        """Delete every named object under ``prefix``; returns how many bytes were freed."""
        base = f"{self._root}/{_check_prefix(prefix)}"
        with self._remote(f"deleting {prefix}") as fs:
            found = fs.find(base, detail=True)
            names = [n for n in found if _is_under(n.lstrip("/"), base)]
            if names:
                fs.rm(names)
        return sum(int(found[n]["size"]) for n in names)


def _is_under(name: str, base: str) -> bool:
    return name == base or name.startswith(f"{base}/")


def _modified(info: dict[str, Any]) -> datetime:
    value = info.get("LastModified") or info.get("mtime") or info.get("created")
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)


def _make_filesystem(protocol: str, options: dict[str, Any]) -> Any:
    import fsspec

    if protocol != "s3":
        return fsspec.filesystem(protocol, **options)
    try:
        import s3fs
    except ImportError as exc:
        raise ConfigError(
            "s3:// artifact stores need the s3fs package; install it with "
            "`pip install 'ctloop[s3]'`"
        ) from exc
    return s3fs.S3FileSystem(**_s3_options(options))


def _s3_options(options: dict[str, Any]) -> dict[str, Any]:
    """s3fs options with ctloop's defaults: no listings cache (other processes write
    too), short connect timeout and few retries (fail fast when the endpoint is down)."""
    opts = dict(options)
    region = opts.pop("region_name", None) or opts.pop("region", None)
    if region:
        opts["client_kwargs"] = {**(opts.get("client_kwargs") or {}), "region_name": region}
    opts.setdefault("use_listings_cache", False)
    opts.setdefault(
        "config_kwargs",
        {"connect_timeout": 5, "retries": {"max_attempts": 2, "mode": "standard"}},
    )
    return opts


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError
    except ImportError:
        return (OSError,)
    return (OSError, BotoCoreError)


def open_artifact_store(url: str, options: dict[str, Any] | None = None) -> ArtifactStore:
    """The artifact store at ``url``: a folder path or ``file://`` URL (local),
    ``s3://bucket/prefix`` or ``memory://name`` (fsspec).

    ``options`` go to the fsspec filesystem; a local store reads only ``fsync``
    (default false: writes are atomic but not synced; :class:`LocalArtifactStore` says
    what syncing costs) and ignores the rest (such as an S3 ``endpoint_url`` set in the
    environment for another store).

    >>> open_artifact_store(".ctloop/artifacts")  # doctest: +SKIP
    LocalArtifactStore('/home/me/project/.ctloop/artifacts')
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"artifact store URL {url!r} is empty; set CTLOOP_ARTIFACT_URL to a folder "
            "or s3://bucket/prefix"
        )
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme in ("", "file"):
        root = _file_url_path(url) if scheme else Path(url).expanduser()
        return LocalArtifactStore(root, fsync=_flag(options or {}, "fsync", default=False))
    if scheme in ("s3", "memory"):
        return FsspecArtifactStore(url, options)
    raise ConfigError(
        f"artifact store URL {url!r} has the unsupported scheme '{scheme}://'; use a "
        "folder path, file://, s3://bucket/prefix or memory://name"
    )


def _flag(options: dict[str, Any], name: str, *, default: bool) -> bool:
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(
            f"artifact store option {name!r} is {value!r} ({type(value).__name__}); "
            "use true or false"
        )
    return value


def _file_url_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(
            f"artifact store URL {url!r} names the remote host {parts.netloc!r}; file:// "
            "URLs must be local (file:///absolute/path)"
        )
    path = unquote(parts.path)
    if re.match(r"/[A-Za-z]:", path):  # file:///C:/data on Windows
        path = path[1:]
    return Path(path)
