"""Saving Python values as artifacts and loading them back: the glue between
materializers and the artifact store, used by the pipeline engine.

An artifact is a set of files, each stored as a content-addressed blob, plus a
manifest blob listing them; the artifact's digest is the manifest's sha256. The
manifest is stored only after every file is, so a record never points at bytes
that are not all there.

>>> record = save_value({"auc": 0.91}, store, staging_root=tmp)  # doctest: +SKIP
>>> load_value(record, store, cache_dir=cache)  # doctest: +SKIP
{'auc': 0.91}
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ctloop.artifacts._materializer import Materializer
from ctloop.artifacts._registry import materializer_for, materializer_named
from ctloop.errors import ArtifactError, CtloopError, IntegrityError
from ctloop.store.artifact_store import ArtifactStore
from ctloop.store.records import ArtifactRecord, FileEntry, new_id

__all__ = [
    "BytesMaterializer",
    "FileTreeMaterializer",
    "artifact_available",
    "check_artifact_path",
    "load_value",
    "record_files",
    "save_value",
]

_MANIFEST_FORMAT = 1
_DIGEST = re.compile(r"[0-9a-f]{64}")
_DRIVE = re.compile(r"[A-Za-z]:")


class BytesMaterializer(Materializer):
    """A materializer for small values whose files it can build in memory (JSON):
    :func:`save_value` stores the bytes directly, skipping the staging folder, which
    keeps saving a metric or a parameter dict to well under a millisecond plus the
    store's sync."""

    @abstractmethod
    def to_bytes(self, value: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        """The value's files as ``{relative posix path: bytes}``, and its properties."""

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        """Write the files of :meth:`to_bytes` into ``directory``."""
        contents, properties = self.to_bytes(value)
        for relative, data in contents.items():
            target = directory / check_artifact_path(relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return properties


class FileTreeMaterializer(Materializer):
    """A materializer for values that already are files on disk (a file or a folder).

    :func:`save_value` stores the files straight from where they are, without a copy
    in the staging folder, and :func:`load_value` asks for a local folder built from
    the blobs in ``cache_dir``, which is why such artifacts load through
    :meth:`load_tree` rather than :meth:`load`.
    """

    @abstractmethod
    def source_files(self, value: Any) -> tuple[list[tuple[str, Path]], dict[str, Any]]:
        """The value's files as ``(relative posix path, local file)`` pairs, and the
        artifact's properties."""

    @abstractmethod
    def load_tree(
        self,
        files: Mapping[str, Path],
        properties: Mapping[str, Any],
        *,
        digest: str,
        cache_dir: Path,
    ) -> Path:
        """A local path holding the artifact's files, built under ``cache_dir``."""

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        """Link (or copy) the value's files into ``directory``."""
        sources, properties = self.source_files(value)
        for relative, source in sources:
            target = directory / check_artifact_path(relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(source, target)
        return properties

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        """Not available: file trees need a cache folder, so use :func:`load_value`."""
        raise ArtifactError(
            f"{self.artifact_type} artifacts are loaded with "
            "ctloop.artifacts.load_value(record, store, cache_dir=...), which knows "
            "where to build the local folder; do not call the materializer's load()"
        )


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target``, or copy it (read-only) where links fail."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
        os.chmod(target, 0o444)


def check_artifact_path(path: str) -> str:
    """Return ``path`` if it is a safe relative posix path inside an artifact, else
    raise :class:`~ctloop.errors.IntegrityError` (absolute, ``..``, backslash, …)."""
    segments = path.split("/") if isinstance(path, str) else [""]
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or _DRIVE.match(path)
        or any(s in ("", ".", "..") for s in segments)
    ):
        raise IntegrityError(
            f"artifact file path {path!r} is not a plain relative path (it is empty, "
            "absolute, or has '..', '.', empty segments or backslashes); the record is "
            "corrupt or crafted: re-create the artifact"
        )
    return path


def save_value(
    value: Any,
    store: ArtifactStore,
    *,
    staging_root: Path,
    materializer: Materializer | None = None,
) -> ArtifactRecord:
    """Save ``value`` as an artifact in ``store`` and return its record.

    The materializer writes into a fresh folder under ``staging_root`` (removed
    afterwards, also on error); each file becomes a blob; the manifest goes last.
    """
    chosen = materializer or materializer_for(value)
    if isinstance(chosen, BytesMaterializer):
        with _saving_with(chosen, value):
            contents, properties = chosen.to_bytes(value)
        entries = [
            FileEntry(check_artifact_path(path), store.put_bytes(data), len(data))
            for path, data in sorted(contents.items())
        ]
        return record_files(chosen, store, entries, properties)
    if isinstance(chosen, FileTreeMaterializer):
        sources, properties = chosen.source_files(value)
        return _store_artifact(chosen, store, sources, properties)
    staging_root = Path(staging_root)
    staging_root.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="save-", dir=staging_root))
    try:
        with _saving_with(chosen, value):
            properties = chosen.save(value, directory)
        return _store_artifact(chosen, store, _files_under(directory), properties)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _saving_with(materializer: Materializer, value: Any) -> Iterator[None]:
    """Let ctloop errors through; name the materializer and the value's type in any
    other error (a user materializer's bug), keeping the cause."""
    try:
        yield
    except CtloopError:
        raise
    except Exception as exc:
        cls = type(value)
        raise ArtifactError(
            f"materializer {materializer.name!r} failed to save a value of type "
            f"{cls.__module__}.{cls.__qualname__}: {exc!r}"
        ) from exc


def _files_under(directory: Path) -> list[tuple[str, Path]]:
    found = []
    for folder, _, names in os.walk(directory):
        for name in names:
            path = Path(folder, name)
            found.append((path.relative_to(directory).as_posix(), path))
    return found


def _store_artifact(
    materializer: Materializer,
    store: ArtifactStore,
    sources: Iterable[tuple[str, Path]],
    properties: Mapping[str, Any],
) -> ArtifactRecord:
    entries = []
    for relative, source in sorted(sources):
        check_artifact_path(relative)
        digest, size = store.put_file(source)
        entries.append(FileEntry(relative, digest, size))
    return record_files(materializer, store, entries, properties)


def record_files(
    materializer: Materializer,
    store: ArtifactStore,
    entries: list[FileEntry],
    properties: Mapping[str, Any],
) -> ArtifactRecord:
    """The artifact made of ``entries``, blobs already in ``store``: its manifest is
    stored (last, once every file is in) and its record built."""
    manifest = _manifest(materializer, entries)
    digest = store.put_bytes(manifest)
    return ArtifactRecord(
        id=new_id(),
        type=materializer.artifact_type,
        materializer=materializer.name,
        materializer_version=materializer.version,
        digest=digest,
        uri=store.blob_uri(digest),
        size=sum(e.size for e in entries),
        files=tuple(entries),
        properties=_plain_json(properties, materializer),
    )


def _manifest(materializer: Materializer, entries: list[FileEntry]) -> bytes:
    """Canonical JSON: sorted keys, files sorted by path."""
    import orjson

    document = {
        "manifest": _MANIFEST_FORMAT,
        "type": materializer.artifact_type,
        "materializer": materializer.name,
        "materializer_version": materializer.version,
        "files": [[e.path, e.digest, e.size] for e in entries],
    }
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def _plain_json(properties: Mapping[str, Any], materializer: Materializer) -> dict[str, Any]:
    import orjson

    try:
        data = orjson.dumps(dict(properties), option=orjson.OPT_SERIALIZE_NUMPY)
    except (orjson.JSONEncodeError, TypeError) as exc:
        raise ArtifactError(
            f"materializer {materializer.name!r} returned properties that are not JSON "
            f"({exc}); return plain numbers, strings, lists and dicts from save()"
        ) from exc
    result: dict[str, Any] = orjson.loads(data)
    return result


def load_value(record: ArtifactRecord, store: ArtifactStore, *, cache_dir: Path) -> Any:
    """Load the value of an artifact, with the materializer that saved it.

    Remote blobs are downloaded (once, verified) into ``cache_dir``.
    """
    materializer = materializer_named(record.materializer)
    _check_version(record, materializer)
    for entry in record.files:  # all of them before any download
        check_artifact_path(entry.path)
    files = {e.path: store.local_path(e.digest, Path(cache_dir)) for e in record.files}
    try:
        if isinstance(materializer, FileTreeMaterializer):
            digest = _check_digest(record.digest)
            return materializer.load_tree(
                files, record.properties, digest=digest, cache_dir=Path(cache_dir)
            )
        return materializer.load(files, record.properties)
    except CtloopError:
        raise
    except Exception as exc:  # corrupt files or a user materializer's bug
        raise ArtifactError(
            f"artifact {record.id} of type {record.type} could not be loaded by "
            f"materializer {record.materializer!r}: {exc!r}"
        ) from exc


def _check_version(record: ArtifactRecord, materializer: Materializer) -> None:
    written, installed = record.materializer_version, materializer.version
    if written == installed:
        return
    written_key, installed_key = _version_key(written), _version_key(installed)
    if written_key is not None and installed_key is not None and written_key < installed_key:
        return  # materializers read the formats of their earlier versions
    raise ArtifactError(
        f"artifact {record.id} was written by materializer {record.materializer!r} "
        f"version {written}, but the installed one is version {installed}; upgrade "
        "the package that provides it (or ctloop) to load this artifact"
    )


def _version_key(version: str) -> tuple[int, ...] | None:
    parts = version.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def _check_digest(digest: str) -> str:
    if not _DIGEST.fullmatch(digest):
        raise IntegrityError(
            f"artifact digest {digest!r} is not a sha256 digest; the record is corrupt"
        )
    return digest


def artifact_available(record: ArtifactRecord, store: ArtifactStore) -> bool:
    """Whether every file of the artifact is still in the store (cache hits check
    this before reusing an output)."""
    return all(store.has(e.digest) for e in record.files)
