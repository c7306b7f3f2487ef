"""save_value / load_value / artifact_available: manifests, cleanup, versions, safety."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ctloop.artifacts import Materializer, artifact_available, register_materializer, save_value
from ctloop.errors import ArtifactError, IntegrityError
from ctloop.store.records import FileEntry
from tests.artifacts.conftest import Workspace

HEAVY = ("pandas", "pyarrow", "sklearn", "skops", "numpy", "s3fs", "fsspec", "scipy")


def test_the_record_describes_the_files_and_the_manifest(workspace: Workspace) -> None:
    record = workspace.save({"auc": 0.91})
    [entry] = record.files
    manifest = workspace.store.get_bytes(record.digest)
    assert record.digest == hashlib.sha256(manifest).hexdigest()
    assert record.uri == workspace.store.blob_uri(record.digest)
    assert record.size == entry.size == len(workspace.store.get_bytes(entry.digest))
    assert json.loads(manifest) == {
        "manifest": 1,
        "type": "JSON",
        "materializer": "ctloop.json",
        "materializer_version": "1",
        "files": [["value.json", entry.digest, entry.size]],
    }
    assert len(record.id) == 32


def test_equal_values_have_equal_digests_and_are_stored_once(local: Workspace) -> None:
    first, second = local.save([1, 2, 3]), local.save([1, 2, 3])
    assert first.digest == second.digest and first.id != second.id
    assert len(list(local.store.iter_blobs())) == 2  # the file and the manifest


def test_staging_folders_are_removed(local: Workspace) -> None:
    import numpy as np

    local.save(np.arange(3))
    assert list(local.staging.iterdir()) == []


class Exploding(Materializer):
    """Writes a file, then fails: nothing may be stored or left behind."""

    name = "tests.exploding"
    artifact_type = "Broken"
    handles: ClassVar[tuple[str, ...]] = ()

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        (directory / "half.bin").write_bytes(b"half")
        raise RuntimeError("disk on fire")

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        raise AssertionError


def test_a_failing_materializer_leaves_nothing_behind(local: Workspace) -> None:
    with pytest.raises(ArtifactError, match=r"tests.exploding.*builtins.object.*disk on fire"):
        save_value(object(), local.store, staging_root=local.staging, materializer=Exploding())
    assert list(local.staging.iterdir()) == []
    assert list(local.store.iter_blobs()) == []


class NumpyProperties(Materializer):
    """Returns numpy numbers as properties: they are stored as plain JSON."""

    name = "tests.numpy-props"
    artifact_type = "Thing"

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        import numpy as np

        (directory / "x").write_bytes(b"x")
        return {"rows": np.int64(3), "bad": object()} if value else {"rows": np.int64(3)}

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        return None


def test_properties_are_plain_json(local: Workspace) -> None:
    record = save_value(0, local.store, staging_root=local.staging, materializer=NumpyProperties())
    assert record.properties == {"rows": 3} and type(record.properties["rows"]) is int
    with pytest.raises(ArtifactError, match="not JSON"):
        save_value(1, local.store, staging_root=local.staging, materializer=NumpyProperties())


def test_artifact_available_follows_the_blobs(workspace: Workspace) -> None:
    record = workspace.save({"a": 1})
    assert artifact_available(record, workspace.store)
    workspace.store.delete_blob(record.files[0].digest)
    assert not artifact_available(record, workspace.store)


@pytest.mark.parametrize(
    "path", ["../escape", "/etc/passwd", "a/../../b", "a\\b", "", "C:/x", "./a"]
)
def test_a_crafted_file_path_is_refused_on_load(local: Workspace, path: str) -> None:
    record = local.save({"a": 1})
    crafted = dataclasses.replace(record, files=(dataclasses.replace(record.files[0], path=path),))
    with pytest.raises(IntegrityError, match="not a plain relative path"):
        local.load(crafted)


def test_an_artifact_written_by_a_newer_materializer_is_refused(local: Workspace) -> None:
    record = dataclasses.replace(local.save({"a": 1}), materializer_version="2")
    with pytest.raises(ArtifactError, match=r"version 2.*installed one is version 1"):
        local.load(record)


def test_an_artifact_written_by_an_older_materializer_loads(
    local: Workspace, clean_registry: None
) -> None:
    class JsonV2(Materializer):
        name = "ctloop.json"
        artifact_type = "JSON"
        version = "2"

        def save(self, value: Any, directory: Path) -> dict[str, Any]:
            raise AssertionError

        def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
            return json.loads(files["value.json"].read_bytes())

    record = local.save({"a": 1})
    register_materializer(JsonV2())
    assert local.load(record) == {"a": 1}


def test_a_load_failure_names_the_artifact(local: Workspace) -> None:
    record = local.save(__import__("numpy").arange(3))
    other = local.store.put_bytes(b"not an npy file")
    broken = dataclasses.replace(record, files=(FileEntry("array.npy", other, 15),))
    with pytest.raises(ArtifactError, match=f"{record.id}.*Array.*ctloop.numpy"):
        local.load(broken)


def test_importing_ctloop_artifacts_imports_no_heavy_library() -> None:
    code = (
        "import sys, ctloop.artifacts, ctloop.store._fs_artifacts;"
        "from ctloop.artifacts._registry import materializer_for;"
        "materializer_for({'a': 1});"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
