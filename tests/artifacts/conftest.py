"""Fixtures for artifact tests: a store of each backend, staging and cache folders,
and a registry that is put back as it was after each test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ctloop.artifacts import _registry as registry_module
from ctloop.artifacts import load_value, save_value
from ctloop.store import ArtifactStore
from ctloop.store._fs_artifacts import FsspecArtifactStore, LocalArtifactStore
from ctloop.store.records import ArtifactRecord


@dataclass
class Workspace:
    """An artifact store plus the local folders that saving and loading use."""

    store: ArtifactStore
    staging: Path
    cache: Path

    def save(self, value: Any) -> ArtifactRecord:
        """Save ``value`` as an artifact."""
        return save_value(value, self.store, staging_root=self.staging)

    def load(self, record: ArtifactRecord) -> Any:
        """Load an artifact's value."""
        return load_value(record, self.store, cache_dir=self.cache)

    def round_trip(self, value: Any) -> tuple[ArtifactRecord, Any]:
        """Save then load ``value``."""
        record = self.save(value)
        return record, self.load(record)


@pytest.fixture(params=["local", "s3"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Workspace:
    """A local and an S3 (moto server) workspace."""
    if request.param == "local":
        store: ArtifactStore = LocalArtifactStore(tmp_path / "artifacts")
    else:
        location = request.getfixturevalue("s3_location")
        store = FsspecArtifactStore(location.url, location.options)
    return Workspace(store, tmp_path / "staging", tmp_path / "cache")


@pytest.fixture
def local(tmp_path: Path) -> Workspace:
    """A workspace on a local store only."""
    return Workspace(
        LocalArtifactStore(tmp_path / "artifacts"), tmp_path / "staging", tmp_path / "cache"
    )


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Undo every register_materializer() of the test."""
    front, back = list(registry_module._front), list(registry_module._back)
    try:
        yield
    finally:
        registry_module._front[:] = front
        registry_module._back[:] = back
