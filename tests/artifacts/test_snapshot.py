"""Snapshots of files and folders, Path outputs (Files artifacts), and checkout."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest

from ctloop.artifacts import checkout_snapshot, snapshot_path
from ctloop.errors import ArtifactError, IntegrityError
from ctloop.store.records import ArtifactRecord
from tests.artifacts.conftest import Workspace


def make_folder(root: Path) -> Path:
    """A small data folder: three files, one of them nested."""
    files = {
        "flights.csv": "year,month,dep_delay\n2013,1,2\n2013,1,4\n",
        "weather/jfk.csv": "hour,temp\n0,39.0\n1,39.9\n",
        "README": "raw data\n",
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def snapshot(workspace: Workspace, path: Path) -> ArtifactRecord:
    return snapshot_path(path, workspace.store, staging_root=workspace.staging)


def test_a_folder_snapshot_lists_every_file(workspace: Workspace, tmp_path: Path) -> None:
    data = make_folder(tmp_path / "raw")
    record = snapshot(workspace, data)
    assert (record.type, record.materializer) == ("DataSnapshot", "ctloop.snapshot")
    assert record.properties == {"kind": "folder", "files": 3, "root_name": "raw"}
    assert [f.path for f in record.files] == ["README", "flights.csv", "weather/jfk.csv"]
    assert record.size == sum(len(b) for b in read_tree(data).values())
    assert not (workspace.staging).exists()  # files go straight to the store


def test_a_second_snapshot_stores_only_the_changed_file(
    workspace: Workspace, tmp_path: Path
) -> None:
    data = make_folder(tmp_path / "raw")
    first = snapshot(workspace, data)
    before = {d for d, _, _ in workspace.store.iter_blobs()}
    (data / "weather" / "jfk.csv").write_text("hour,temp\n0,41.0\n")
    second = snapshot(workspace, data)
    new = {d for d, _, _ in workspace.store.iter_blobs()} - before
    changed = hashlib.sha256(b"hour,temp\n0,41.0\n").hexdigest()
    assert new == {changed, second.digest}  # one data blob and the new manifest
    assert first.digest != second.digest
    assert snapshot(workspace, data).digest == second.digest


def test_checkout_restores_each_version(workspace: Workspace, tmp_path: Path) -> None:
    data = make_folder(tmp_path / "raw")
    original = read_tree(data)
    first = snapshot(workspace, data)
    (data / "flights.csv").write_text("changed\n")
    second = snapshot(workspace, data)
    out = checkout_snapshot(first, workspace.store, tmp_path / "v1", cache_dir=workspace.cache)
    assert out == tmp_path / "v1"
    assert read_tree(out) == original
    out = checkout_snapshot(second, workspace.store, tmp_path / "v1", cache_dir=workspace.cache)
    assert read_tree(out) == read_tree(data)
    assert os.access(out / "flights.csv", os.W_OK)  # the user's copy, not a blob
    assert not [p for p in out.rglob("*") if "ctloop-tmp" in p.name]


def test_a_single_file_snapshot_checks_out_under_its_name(
    workspace: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "train.parquet").write_bytes(b"PAR1 pretend")
    record = snapshot(workspace, tmp_path / "train.parquet")
    assert record.properties == {"kind": "file", "files": 1, "root_name": "train.parquet"}
    out = checkout_snapshot(record, workspace.store, tmp_path / "dest", cache_dir=workspace.cache)
    assert out == tmp_path / "dest" / "train.parquet"
    assert out.read_bytes() == b"PAR1 pretend"


def test_loading_a_snapshot_gives_a_local_read_only_folder_built_once(
    workspace: Workspace, tmp_path: Path
) -> None:
    data = make_folder(tmp_path / "raw")
    record = snapshot(workspace, data)
    loaded = workspace.load(record)
    assert loaded == workspace.cache / "snapshots" / record.digest / "raw"
    assert read_tree(loaded) == read_tree(data)
    assert not os.access(loaded / "README", os.W_OK) or os.geteuid() == 0
    assert (loaded / "README").stat().st_mode & 0o222 == 0
    inode = (loaded / "README").stat().st_ino
    assert workspace.load(record) == loaded
    assert (loaded / "README").stat().st_ino == inode
    assert [p.name for p in loaded.parent.iterdir()] == ["raw"]  # no temp folders left


def test_loading_a_single_file_snapshot_gives_the_file(
    workspace: Workspace, tmp_path: Path
) -> None:
    (tmp_path / "labels.csv").write_text("id,label\n1,a\n")
    record = snapshot(workspace, tmp_path / "labels.csv")
    loaded = workspace.load(record)
    assert loaded.name == "labels.csv" and loaded.read_text() == "id,label\n1,a\n"


def test_equal_folders_with_different_names_load_under_their_own_names(
    local: Workspace, tmp_path: Path
) -> None:
    first = snapshot(local, make_folder(tmp_path / "a"))
    second = snapshot(local, make_folder(tmp_path / "b"))
    assert first.digest == second.digest
    assert local.load(first).name == "a" and local.load(second).name == "b"


def test_a_path_output_is_a_files_artifact(workspace: Workspace, tmp_path: Path) -> None:
    data = make_folder(tmp_path / "report")
    record, loaded = workspace.round_trip(data)
    assert (record.type, record.materializer) == ("Files", "ctloop.files")
    assert isinstance(loaded, Path) and read_tree(loaded) == read_tree(data)
    record, loaded = workspace.round_trip(data / "README")
    assert loaded.read_text() == "raw data\n"


def test_a_missing_path_is_refused_naming_it(local: Workspace, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="nowhere"):
        snapshot(local, tmp_path / "nowhere")


@pytest.mark.parametrize("path", ["../outside.txt", "/tmp/abs.txt", "a/../../x"])
def test_checkout_refuses_paths_that_escape_dest(
    local: Workspace, tmp_path: Path, path: str
) -> None:
    record = snapshot(local, make_folder(tmp_path / "raw"))
    evil = dataclasses.replace(record.files[0], path=path)
    crafted = dataclasses.replace(record, files=(*record.files, evil))
    with pytest.raises(IntegrityError):
        checkout_snapshot(crafted, local.store, tmp_path / "dest", cache_dir=local.cache)
    with pytest.raises(IntegrityError):
        local.load(crafted)
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "dest").exists() or list((tmp_path / "dest").iterdir()) == []


def test_checkout_refuses_to_write_through_a_link_out_of_dest(
    local: Workspace, tmp_path: Path
) -> None:
    record = snapshot(local, make_folder(tmp_path / "raw"))
    (tmp_path / "dest").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "dest" / "weather").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(IntegrityError, match="outside"):
        checkout_snapshot(record, local.store, tmp_path / "dest", cache_dir=local.cache)
    assert list((tmp_path / "elsewhere").iterdir()) == []


@pytest.mark.parametrize("root_name", ["..", "a/b", "", None])
def test_a_crafted_root_name_is_refused(
    local: Workspace, tmp_path: Path, root_name: object
) -> None:
    record = snapshot(local, make_folder(tmp_path / "raw"))
    crafted = dataclasses.replace(record, properties={**record.properties, "root_name": root_name})
    with pytest.raises(IntegrityError):
        local.load(crafted)
    with pytest.raises(IntegrityError):
        checkout_snapshot(crafted, local.store, tmp_path / "dest", cache_dir=local.cache)


def test_only_snapshots_can_be_checked_out(local: Workspace, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="not a snapshot"):
        checkout_snapshot(local.save({"a": 1}), local.store, tmp_path / "d", cache_dir=local.cache)
