"""Data versioning, DVC-style: snapshot a file or folder as version N of a name.

Each file is stored content-addressed, so a new version that changes one file of a
folder stores one new blob. A pipeline reads a version with
:func:`ctloop.data_version`, and lineage names the version a model was trained on.

>>> add_data_version("flights", Path("data/flights.parquet"), ...)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ctloop.errors import DataVersionError, NotFoundError
from ctloop.store._metadata_rules import check_latest_data_version
from ctloop.store.artifact_store import ArtifactStore
from ctloop.store.metadata import MetadataStore
from ctloop.store.records import ArtifactRecord, DataVersionRecord

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class AddedVersion:
    """The version a ``data add`` produced; ``unchanged`` when it equals the latest."""

    version: DataVersionRecord
    artifact: ArtifactRecord
    unchanged: bool


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@N`` as ``(name, version or None)``."""
    name, sep, version = ref.partition("@")
    check_name(name)
    if not sep:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise DataVersionError(f"data version {ref!r} must look like NAME@N with N ≥ 1")
    return name, int(version)


def check_name(name: str) -> None:
    """Raise unless ``name`` is a valid data set name."""
    if not _NAME.match(name):
        raise DataVersionError(
            f"data set name {name!r} is invalid; use letters, digits, '_', '.', '-' "
            "(starting with a letter or digit)"
        )


def add_data_version(
    name: str,
    path: Path,
    *,
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    staging_root: Path,
    message: str = "",
    follow_links: bool = False,
    source: str | None = None,
) -> AddedVersion:
    """Snapshot ``path`` as the next version of ``name`` (no new version if unchanged).

    A symbolic link inside the folder that points outside it is refused unless
    ``follow_links``, so a snapshot never stores a file from elsewhere by surprise.
    ``source`` is recorded as where the data came from (default: ``path``)."""
    from ctloop.artifacts._snapshot import snapshot_path

    check_name(name)
    if not path.exists():
        raise DataVersionError(f"cannot add data set {name!r}: {str(path)!r} does not exist")
    if not follow_links:
        check_links_stay_inside(path)
    record = snapshot_path(path, artifacts, staging_root=staging_root)
    return record_data_version(
        name, record, metadata=metadata, source=source or str(path.resolve()), message=message
    )


def record_data_version(
    name: str,
    record: ArtifactRecord,
    *,
    metadata: MetadataStore,
    source: str,
    message: str = "",
    expect_latest: int | None = None,
) -> AddedVersion:
    """Record the snapshot ``record`` as the next version of ``name``, unless it holds
    the same files as the latest version (then that one is returned, ``unchanged``).

    With ``expect_latest`` (0: no version yet) the version is added only while that is
    the latest one, and :class:`~ctloop.errors.ConflictError` says another writer won."""
    check_name(name)
    try:
        latest = metadata.get_data_version(name)
    except NotFoundError:
        latest = None
    check_latest_data_version(name, latest.version if latest else 0, expect_latest)
    if latest is not None:
        previous = metadata.get_artifact(latest.artifact_id)
        if previous.digest == record.digest:
            return AddedVersion(latest, previous, unchanged=True)
    metadata.put_artifacts([record])
    version = metadata.add_data_version(
        name, record.id, source=source, message=message, expect_latest=expect_latest
    )
    return AddedVersion(version, record, unchanged=False)


def check_links_stay_inside(folder: Path) -> None:
    """Raise unless every symbolic link to a file under ``folder`` points inside it.

    Links to folders are never followed by a snapshot, and broken links are skipped, so
    only links to files are checked."""
    if not folder.is_dir():
        return
    root = folder.resolve()
    for parent, _, names in os.walk(folder):
        for name in names:
            entry = Path(parent, name)
            if not (entry.is_symlink() and entry.is_file()):
                continue
            target = entry.resolve()
            if not target.is_relative_to(root):
                raise DataVersionError(
                    f"{entry} is a symbolic link to {target}, outside {folder}; copy the "
                    "file into the folder, remove the link, or pass --follow-links "
                    "(follow_links=True) to store the file it points to"
                )


def resolve(ref: str, metadata: MetadataStore) -> tuple[DataVersionRecord, ArtifactRecord]:
    """The version and artifact that ``NAME[@N]`` names."""
    name, version = parse_ref(ref)
    try:
        record = metadata.get_data_version(name, version)
    except NotFoundError as exc:
        known = sorted({v.name for v in metadata.list_data_versions()})
        raise DataVersionError(
            f"data version {ref!r} does not exist; known data sets: {', '.join(known) or '(none)'}"
            f" — see `ctloop data versions {name}`"
        ) from exc
    return record, metadata.get_artifact(record.artifact_id)


def get_data_version(
    ref: str,
    dest: Path,
    *,
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    cache_dir: Path,
) -> Path:
    """Write the files of ``NAME[@N]`` into ``dest``; returns the written path."""
    from ctloop.artifacts._snapshot import checkout_snapshot

    _, artifact = resolve(ref, metadata)
    return checkout_snapshot(artifact, artifacts, dest, cache_dir=cache_dir)
