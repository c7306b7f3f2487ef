"""The artifact store interface: content-addressed blobs plus a few named objects.

Blobs are keyed by the sha256 of their bytes and live under ``objects/<aa>/<digest>``
of the store root: identical bytes are stored once. Named objects (step logs) live
under other keys, e.g. ``logs/<run>/<execution>.log``.

Error contract for every implementation:

- writes are atomic: a reader never sees a partly written blob or object under its
  final key, even if the writer is killed mid-way (local: temp file + ``os.replace``;
  object stores: a single put);
- keys are confined to the store root: a key that is absolute, contains ``..``, a
  backslash or an empty segment raises :class:`~ctloop.errors.IntegrityError`;
- reading a blob or object that is not there raises :class:`~ctloop.errors.NotFoundError`
  naming the digest or key;
- a store that cannot be reached raises :class:`~ctloop.errors.StoreUnavailableError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path


class ArtifactStore(ABC):
    """Content-addressed blob storage (local folder, S3, anything fsspec speaks)."""

    url: str

    @abstractmethod
    def put_file(self, path: Path) -> tuple[str, int]:
        """Store a local file's bytes; returns ``(sha256 digest, size)``.
        Skips the upload when a blob with that digest exists."""

    @abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store bytes; returns their sha256 digest."""

    @abstractmethod
    def has(self, digest: str) -> bool:
        """Whether a blob with this digest is stored."""

    @abstractmethod
    def get_bytes(self, digest: str) -> bytes:
        """The bytes of a blob."""

    @abstractmethod
    def local_path(self, digest: str, cache_dir: Path) -> Path:
        """A local, read-only path holding the blob's bytes: the blob itself for a local
        store, a verified download into ``cache_dir`` for a remote one. Callers must not
        write to it."""

    @abstractmethod
    def iter_blobs(self) -> Iterator[tuple[str, int, datetime]]:
        """Every stored blob as ``(digest, size, modified time UTC)``."""

    @abstractmethod
    def delete_blob(self, digest: str) -> None:
        """Delete a blob (no error if it is already gone)."""

    @abstractmethod
    def write_object(self, key: str, data: bytes) -> str:
        """Atomically write a named object; returns its URL."""

    @abstractmethod
    def read_object(self, key: str) -> bytes:
        """Read a named object."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every named object under ``prefix``; returns how many bytes were freed."""

    def clean_temp(self, older_than: timedelta) -> int:
        """Remove temp files that killed writers left, older than ``older_than``;
        returns the bytes freed. Stores whose writes leave no temp files return 0."""
        return 0

    def blob_uri(self, digest: str) -> str:
        """The URL of a blob (for display and ``ArtifactRecord.uri``)."""
        return f"{self.url.rstrip('/')}/objects/{digest[:2]}/{digest}"
