"""Where ctloop keeps things: the metadata store (SQL) and the artifact store (files).

Importing this package is cheap: the SQL and filesystem backends are imported when a
store is opened.

>>> store = open_metadata_store("sqlite:///.ctloop/metadata.db")  # doctest: +SKIP
>>> store.list_runs(limit=5)  # doctest: +SKIP
[]
"""

from __future__ import annotations

import os
import threading
import typing

from ctloop.store.artifact_store import ArtifactStore
from ctloop.store.metadata import MetadataStore

__all__ = ["ArtifactStore", "MetadataStore", "open_artifact_store", "open_metadata_store"]

_metadata_stores: dict[tuple[int, str], MetadataStore] = {}
_metadata_stores_lock = threading.Lock()


def open_metadata_store(url: str) -> MetadataStore:
    """The metadata store at ``url``, one per URL per process.

    Accepts ``sqlite:///path/to/metadata.db`` and
    ``postgresql+psycopg://user:password@host:5432/db``; any other URL raises
    :class:`~ctloop.errors.ConfigError`. The schema is migrated on first use.
    """
    key = (os.getpid(), url)
    with _metadata_stores_lock:
        store = _metadata_stores.get(key)
        if store is None:
            from ctloop.store._sql import SqlMetadataStore

            store = _metadata_stores[key] = SqlMetadataStore(url)
    return store


def open_artifact_store(url: str, options: dict[str, typing.Any] | None = None) -> ArtifactStore:
    """The artifact store at ``url``: a local folder, ``file://…`` or ``s3://bucket/prefix``;
    ``options`` go to the backend (e.g. ``{"endpoint_url": "http://127.0.0.1:9000"}``)."""
    from ctloop.store._fs_artifacts import open_artifact_store as _open

    return _open(url, options or {})
