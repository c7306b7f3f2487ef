"""Snapshots of files and folders: the storage side of data versioning.

A snapshot stores every file of a folder (recursively) or a single file as a
content-addressed blob, so a file that did not change between two snapshots is
stored once. Files are put straight from where they lie; nothing is copied into a
staging folder first. Empty folders are not recorded; symbolic links to files are
stored as the files' contents, links to folders are not followed.

>>> record = snapshot_path(Path("data/raw"), store, staging_root=tmp)  # doctest: +SKIP
>>> checkout_snapshot(record, store, Path("restore"), cache_dir=cache)  # doctest: +SKIP
PosixPath('restore')

Artifacts of type ``DataSnapshot`` (and ``Files``, for ``pathlib.Path`` values
returned by steps) load through :func:`~ctloop.artifacts.load_value` as a local,
read-only path under ``cache_dir/snapshots/<digest>/``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from ctloop.artifacts._io import (
    FileTreeMaterializer,
    check_artifact_path,
    link_or_copy,
    record_files,
    save_value,
)
from ctloop.errors import ArtifactError, IntegrityError
from ctloop.store.artifact_store import ArtifactStore
from ctloop.store.records import ArtifactRecord, FileEntry

__all__ = [
    "FilesMaterializer",
    "SnapshotMaterializer",
    "checkout_snapshot",
    "snapshot_files",
    "snapshot_path",
]


class _TreeMaterializer(FileTreeMaterializer):
    """Stores a file or a folder file by file; loads it as a local path."""

    def source_files(self, value: Any) -> tuple[list[tuple[str, Path]], dict[str, Any]]:
        """The files under ``value`` and the properties ``kind``, ``files``, ``root_name``."""
        return list_tree(Path(value))

    def load_tree(
        self,
        files: Mapping[str, Path],
        properties: Mapping[str, Any],
        *,
        digest: str,
        cache_dir: Path,
    ) -> Path:
        """Build ``cache_dir/snapshots/<digest>/<root_name>`` once, from links to (or
        copies of) the blobs, and return it."""
        return build_tree(files, properties, digest=digest, cache_dir=cache_dir)


class FilesMaterializer(_TreeMaterializer):
    """A ``pathlib.Path`` returned by a step: the file, or the folder's files under
    their relative paths. Loads back as a local path (folder or file)."""

    name = "ctloop.files"
    artifact_type = "Files"
    handles = ("pathlib.Path",)

    def can_save(self, value: Any) -> bool:
        """Any concrete path (``PosixPath``, ``WindowsPath``)."""
        return isinstance(value, PurePath)


class SnapshotMaterializer(_TreeMaterializer):
    """A data snapshot made by :func:`snapshot_path`; never chosen for step outputs."""

    name = "ctloop.snapshot"
    artifact_type = "DataSnapshot"

    def can_save(self, value: Any) -> bool:
        """Never: snapshots are taken with :func:`snapshot_path`."""
        return False


_SNAPSHOT = SnapshotMaterializer()
_TREE_MATERIALIZERS = (SnapshotMaterializer.name, FilesMaterializer.name)


def snapshot_path(path: Path, store: ArtifactStore, *, staging_root: Path) -> ArtifactRecord:
    """Store the file or folder at ``path`` as a ``DataSnapshot`` artifact.

    Each file becomes a blob (unchanged files are stored once across snapshots);
    properties: ``kind`` (``file`` or ``folder``), ``files`` (count), ``root_name``.
    """
    return save_value(Path(path), store, staging_root=staging_root, materializer=_SNAPSHOT)


def snapshot_files(
    root_name: str, entries: list[FileEntry], store: ArtifactStore
) -> ArtifactRecord:
    """A folder snapshot named ``root_name`` made of ``entries`` whose blobs are in
    ``store`` already: files kept from an earlier snapshot cost no reading or hashing.
    Every blob is checked to be there first, so the snapshot never names a missing one."""
    absent = [e.path for e in entries if not store.has(e.digest)]
    if absent:
        raise IntegrityError(
            f"snapshot {root_name!r} names {len(absent)} blob(s) the artifact store lacks "
            f"(first: {absent[0]}); store their files first"
        )
    for entry in entries:
        check_artifact_path(entry.path)
    properties = {"kind": "folder", "files": len(entries), "root_name": root_name}
    ordered = sorted(entries, key=lambda e: e.path)
    return record_files(_SNAPSHOT, store, ordered, properties)


def list_tree(path: Path) -> tuple[list[tuple[str, Path]], dict[str, Any]]:
    """The files of a file or folder as ``(relative posix path, file)`` pairs, sorted,
    and the snapshot properties."""
    root_name = Path(os.path.abspath(path)).name or "root"
    if path.is_file():
        return [(root_name, path)], {"kind": "file", "files": 1, "root_name": root_name}
    if not path.is_dir():
        raise ArtifactError(
            f"{path} is neither a file nor a folder (it does not exist or is a special "
            "file), so it cannot be stored; check the path"
        )
    files = []
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            file = Path(folder, name)
            if file.is_file():  # skips sockets, FIFOs and broken links
                files.append((file.relative_to(path).as_posix(), file))
    return files, {"kind": "folder", "files": len(files), "root_name": root_name}


def _tree_shape(properties: Mapping[str, Any]) -> tuple[str, str]:
    kind, root_name = properties.get("kind"), properties.get("root_name")
    if kind not in ("file", "folder") or not isinstance(root_name, str):
        raise IntegrityError(
            f"snapshot properties {dict(properties)!r} lack a valid 'kind' (file or "
            "folder) and 'root_name'; the record is corrupt: take the snapshot again"
        )
    if "/" in root_name:
        raise IntegrityError(
            f"snapshot root name {root_name!r} is not a single path segment; the "
            "record is corrupt or crafted: take the snapshot again"
        )
    return kind, check_artifact_path(root_name)


def build_tree(
    files: Mapping[str, Path],
    properties: Mapping[str, Any],
    *,
    digest: str,
    cache_dir: Path,
) -> Path:
    """Lay out a snapshot's blobs as ``cache_dir/snapshots/<digest>/<root_name>``:
    built once in a temp folder and renamed into place, so readers see all or nothing."""
    kind, root_name = _tree_shape(properties)
    parent = Path(cache_dir) / "snapshots" / digest
    target = parent / root_name
    if os.path.lexists(target):
        return target
    if kind == "file" and list(files) != [root_name]:
        raise IntegrityError(
            f"single-file snapshot {digest} lists {sorted(files)} instead of "
            f"[{root_name!r}]; the record is corrupt: take the snapshot again"
        )
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{uuid.uuid4().hex}.tmp"
    try:
        if kind == "file":
            link_or_copy(files[root_name], tmp)
            os.replace(tmp, target)
        else:
            _link_all(files, tmp)
            _rename_folder(tmp, target)
    finally:
        _remove(tmp)
    return target


def _link_all(files: Mapping[str, Path], folder: Path) -> None:
    folder.mkdir()
    for relative, blob in files.items():
        target = folder / check_artifact_path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(blob, target)


def _rename_folder(tmp: Path, target: Path) -> None:
    try:
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():  # otherwise another process built it first: use theirs
            raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()


def checkout_snapshot(
    record: ArtifactRecord, store: ArtifactStore, dest: Path, *, cache_dir: Path
) -> Path:
    """Write a snapshot's files into ``dest`` and return where they are: ``dest`` for a
    folder, ``dest/<root_name>`` for a single file.

    Each file is written to a temp file beside it and renamed into place. Files in
    ``dest`` that are not in the snapshot are left alone. Paths that would land
    outside ``dest`` are refused with :class:`~ctloop.errors.IntegrityError`.
    """
    if record.materializer not in _TREE_MATERIALIZERS:
        raise ArtifactError(
            f"artifact {record.id} is a {record.type} artifact, not a snapshot, so it "
            "cannot be checked out; load it with ctloop.artifacts.load_value"
        )
    kind, root_name = _tree_shape(record.properties)
    for entry in record.files:
        check_artifact_path(entry.path)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    real_dest = dest.resolve()
    for entry in record.files:
        target = dest / entry.path
        _check_inside(target.parent.resolve() / target.name, real_dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_atomically(store.local_path(entry.digest, Path(cache_dir)), target)
    return dest / root_name if kind == "file" else dest


def _check_inside(path: Path, root: Path) -> None:
    if not path.is_relative_to(root):
        raise IntegrityError(
            f"snapshot file {path} would be written outside {root} (through a symbolic "
            "link in the destination); remove the link or check out somewhere else"
        )


def _copy_atomically(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.ctloop-tmp")
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()
