"""Read a bundle: check its files against ``bundle.json`` and put its model into a
workspace, so ``ctloop serve``, ``ctloop predict`` and MLServer serve it without the
workspace it came from."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import ConfigError, IntegrityError
from ctloop.store.records import ArtifactRecord, FileEntry, new_id

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["OpenedBundle", "is_bundle", "open_bundle"]

_FORMAT = "ctloop-bundle/1"
_MODEL_DIR = "model"


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a bundle folder (it holds a ``bundle.json``).

    >>> is_bundle("flights@champion")
    False
    """
    return (Path(path) / "bundle.json").is_file()


@dataclass(frozen=True)
class OpenedBundle:
    """A bundle whose files matched ``bundle.json``: ``document`` is that file."""

    directory: Path
    document: dict[str, Any]

    @property
    def reference(self) -> str:
        """``MODEL@ALIAS``: what the model is served as once imported."""
        return f"{self.document['model']}@{self.document['alias']}"

    def import_into(self, workspace: Workspace) -> str:
        """Store the model's files in ``workspace``, register them as a version with the
        bundle's lineage as tags and point the bundle's alias at it; returns
        :attr:`reference`."""
        artifact = self.document["artifact"]
        entries = []
        for entry in artifact["files"]:
            digest, size = workspace.artifacts.put_file(self.directory / _MODEL_DIR / entry["path"])
            entries.append(FileEntry(entry["path"], digest, size))
        manifest = workspace.artifacts.put_bytes((self.directory / "manifest.json").read_bytes())
        record = ArtifactRecord(
            id=new_id(),
            type=artifact["type"],
            materializer=artifact["materializer"],
            materializer_version=artifact["materializer_version"],
            digest=manifest,
            uri=workspace.artifacts.blob_uri(manifest),
            size=int(artifact["size"]),
            files=tuple(entries),
            properties=dict(artifact["properties"]),
        )
        workspace.metadata.put_artifacts([record])
        tags = {
            f"bundle.{key}": str(value)
            for key, value in self.document.get("lineage", {}).items()
            if value is not None
        }
        tags["bundle.reference"] = str(self.document["reference"])
        model = str(self.document["model"])
        version = workspace.registry.register_version(model, record.id, tags=tags)
        workspace.registry.set_alias(
            model, str(self.document["alias"]), version.version, reason="served from a bundle"
        )
        return self.reference

    def scratch_workspace(self, home: Path | None = None) -> tuple[str, str, str]:
        """Import the model into a new workspace under ``home`` (default ``$CTLOOP_HOME``,
        else a temporary folder); returns ``(reference, store_url, artifact_url)``."""
        from ctloop.bundle._code import put_on_path
        from ctloop.store.workspace import Workspace

        put_on_path(self.directory)  # the model's transform may be carried in code/
        base = home or Path(os.environ.get("CTLOOP_HOME") or tempfile.gettempdir())
        base.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="bundle-", dir=base))
        store_url, artifacts = f"sqlite:///{folder / 'metadata.db'}", str(folder / "artifacts")
        with Workspace.open(store_url, artifacts=artifacts) as workspace:
            reference = self.import_into(workspace)
        return reference, store_url, artifacts

    def load_model(self) -> Any:
        """The bundled model, loaded (a :class:`ctloop.artifacts.model.Model`)."""
        from ctloop.artifacts import load_value
        from ctloop.bundle._code import put_on_path
        from ctloop.store.workspace import Workspace

        put_on_path(self.directory)
        workspace = Workspace.in_memory()
        self.import_into(workspace)
        version = workspace.registry.resolve(self.reference)
        record = workspace.metadata.get_artifact(version.artifact_id)
        cache = Path(tempfile.mkdtemp(prefix="ctloop-bundle-"))
        return load_value(record, workspace.artifacts, cache_dir=cache)


def open_bundle(directory: str | Path) -> OpenedBundle:
    """The bundle in ``directory``, every file it lists checked against its sha256: a
    changed or missing file is an :class:`IntegrityError` naming it."""
    directory = Path(directory)
    path = directory / "bundle.json"
    if not path.is_file():
        raise ConfigError(f"{directory} is not a bundle: it has no bundle.json")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise ConfigError(
            f"{path} has format {found!r}, not {_FORMAT!r}; rebuild it with `ctloop bundle`"
        )
    for relative, digest in sorted(document.get("digests", {}).items()):
        if relative == "manifest.json" or relative.startswith((f"{_MODEL_DIR}/", "code/")):
            _check_file(directory, relative, digest)  # model and code; the rest may be edited
    return OpenedBundle(directory, document)


def _check_file(directory: Path, relative: str, digest: str) -> None:
    path = (directory / relative).resolve()
    if directory.resolve() not in path.parents:
        raise IntegrityError(f"bundle.json lists {relative!r}, which is outside the bundle")
    if not path.is_file():
        raise IntegrityError(f"the bundle in {directory} lacks {relative}, which bundle.json lists")
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    if found != digest:
        raise IntegrityError(
            f"{relative} in the bundle {directory} was changed: its sha256 is {found}, "
            f"bundle.json says {digest}; rebuild the bundle with `ctloop bundle`"
        )
