"""Write a bundle from a registered model version (see :mod:`ctloop.bundle`)."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop._version import __version__
from ctloop.bundle._code import carry_code
from ctloop.bundle._manifests import render_deployment_files
from ctloop.errors import ConfigError, ServingError
from ctloop.store.records import utcnow

if TYPE_CHECKING:
    from ctloop.store.records import ArtifactRecord
    from ctloop.store.registry import ModelVersion
    from ctloop.store.workspace import Workspace

__all__ = ["BUNDLE_FORMAT", "BundleInfo", "build_bundle"]

#: the ``format`` of ``bundle.json`` this ctloop writes and reads
BUNDLE_FORMAT = "ctloop-bundle/1"
#: where the model's files go inside the bundle
MODEL_DIR = "model"


@dataclass(frozen=True)
class BundleInfo:
    """What :func:`build_bundle` wrote: the version, the folder, its size in bytes and
    every file it wrote (relative paths)."""

    reference: str
    directory: Path
    size: int
    files: tuple[str, ...]


def build_bundle(
    workspace: Workspace,
    reference: str,
    directory: Path,
    *,
    image: str | None = None,
    port: int = 8080,
    ctloop_requirement: str | None = None,
    force: bool = False,
    code: list[Path] | None = None,
) -> BundleInfo:
    """Write the bundle of ``reference`` (``MODEL@ALIAS`` or ``MODEL@VERSION``) into
    ``directory``, which must be new or empty (``force`` replaces it). ``image`` names
    the container image in the manifests (default ``MODEL:VERSION``);
    ``ctloop_requirement`` is ctloop's line of ``requirements.txt`` (default
    ``ctloop==`` this version; a wheel path or URL where ctloop is not on your index).

    A model with a transform brings the transform's module in ``code/`` (or pins the
    distribution that provides it); ``code`` names more files or folders to carry there,
    for modules the transform imports."""
    version = workspace.registry.resolve(reference)
    record = workspace.metadata.get_artifact(version.artifact_id)
    _check_servable(version, record)
    _prepare(directory, force)
    with tempfile.TemporaryDirectory(prefix="ctloop-bundle-") as cache:
        for entry in record.files:
            source = workspace.artifacts.local_path(entry.digest, Path(cache))
            target = directory / MODEL_DIR / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        (directory / "manifest.json").write_bytes(workspace.artifacts.get_bytes(record.digest))
    carried = carry_code(directory / MODEL_DIR, directory, code)
    requirements = _requirements(record, ctloop_requirement, carried.requirements)
    (directory / "requirements.txt").write_text(requirements)
    alias = reference.partition("@")[2]
    settings = {
        "model": version.model,
        "version": version.version,
        "alias": alias if alias and not alias.isdigit() else "champion",
        "image": image or f"{version.model.lower()}:{version.version}",
        "port": port,
        "python": ".".join(platform.python_version_tuple()[:2]),
        "inputs": _inputs(directory / MODEL_DIR),
        "flavor": str(record.properties.get("flavor", "")),
        "code": bool(carried.files),
    }
    for relative, text in render_deployment_files(settings).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (directory / "entrypoint.sh").chmod(0o755)
    document = _document(version, record, settings, workspace, directory)
    document["code"] = carried.files
    (directory / "bundle.json").write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    written = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    size = sum((directory / p).stat().st_size for p in written)
    return BundleInfo(version.reference, directory, size, tuple(written))


def _inputs(model_dir: Path) -> list[dict[str, str]]:
    """The input columns a client sends, with their V2 datatypes (from ``model.json``):
    the model's own, or for a model with a transform the raw fields the transform declares
    (none listed when it declares none: its requests carry whatever fields it reads)."""
    from ctloop.serve._protocols import V2_DATATYPES

    description = model_dir / "model.json"
    if not description.is_file():
        return []
    document = json.loads(description.read_text())
    transform = document.get("transform")
    signature = (transform.get("signature") or {}) if transform else document.get("signature") or {}
    return [
        {"name": str(c["name"]), "datatype": V2_DATATYPES.get(str(c.get("type")), "BYTES")}
        for c in signature.get("inputs", [])
    ]


def _check_servable(version: ModelVersion, record: ArtifactRecord) -> None:
    if record.type != "Model":
        raise ServingError(
            f"{version.reference} is a {record.type} artifact, not a Model; only models are bundled"
        )
    if record.properties.get("flavor") == "pickle":
        raise ServingError(
            f"{version.reference} is stored as a pickle, which a bundle will not carry "
            "(loading it runs arbitrary code); register it in a safe flavor (skops, ONNX)"
        )


def _prepare(directory: Path, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"-o {directory} is a file; name a new or empty folder")
    if directory.is_dir() and any(directory.iterdir()):
        if not force:
            raise ConfigError(
                f"-o {directory} is not empty; name a new or empty folder, or pass --force "
                "to replace it"
            )
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)


def _requirements(
    record: ArtifactRecord, ctloop_requirement: str | None, extra: list[str] | None = None
) -> str:
    """ctloop, then each distribution the model recorded, pinned to its version, then
    ``extra`` lines (the distribution providing the model's transform)."""
    pinned = record.properties.get("requirements") or {}
    lines = [
        "# What serving this model needs: the versions it was trained with.",
        ctloop_requirement or f"ctloop=={__version__}",
    ]
    lines += [f"{name}=={version}" for name, version in sorted(pinned.items())]
    lines += [line for line in extra or [] if line not in lines]
    return "\n".join(lines) + "\n"


def _document(
    version: ModelVersion,
    record: ArtifactRecord,
    settings: dict[str, Any],
    workspace: Workspace,
    directory: Path,
) -> dict[str, Any]:
    lineage = {
        "run_id": version.run_id,
        "execution_id": version.execution_id,
        "artifact_id": record.id,
        "workspace": workspace.location,
        **{k: v for k, v in version.tags.items() if k.startswith("ctloop.")},
    }
    digests = {
        str(p.relative_to(directory)): _sha256(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
    return {
        "format": BUNDLE_FORMAT,
        "model": version.model,
        "version": version.version,
        "reference": version.reference,
        "alias": settings["alias"],
        "created_at": utcnow().isoformat(),
        "ctloop_version": __version__,
        "python": settings["python"],
        "artifact": {
            "type": record.type,
            "materializer": record.materializer,
            "materializer_version": record.materializer_version,
            "digest": record.digest,
            "size": record.size,
            "files": [asdict(entry) for entry in record.files],
            "properties": record.properties,
        },
        "requirements": record.properties.get("requirements") or {},
        "lineage": lineage,
        "digests": digests,
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
