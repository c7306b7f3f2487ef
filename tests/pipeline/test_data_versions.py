"""Steps read named data versions; lineage names the version a result came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctloop.artifacts._data_versions import add_data_version
from ctloop.config import Settings
from ctloop.errors import DataVersionError, StepError
from ctloop.pipeline._runner import resume_run
from ctloop.store._lineage import upstream
from ctloop.store.workspace import Workspace
from tests.pipeline import sample_pipelines as sp


def _add(folder: Path, stores: Workspace):
    return add_data_version(
        "raw",
        folder,
        metadata=stores.metadata,
        artifacts=stores.artifacts,
        staging_root=Settings.load().home / "tmp",
    )


def test_pipeline_reads_latest_version_and_lineage_names_it(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n2\n")
    stores = Workspace.open()
    first = _add(folder, stores)
    assert first.version.version == 1

    result = sp.versioned.run()
    assert result.load("doubled") == 4
    lineage = upstream(stores.metadata, result.outputs["doubled"]["output"].id)
    names = [n.details.get("data_versions") for n in lineage.nodes.values() if n.kind == "artifact"]
    assert ["raw@1"] in names

    (folder / "b.csv").write_text("x\n3\n")
    blobs_before = {d for d, _, _ in stores.artifacts.iter_blobs()}
    second = _add(folder, stores)
    new_blobs = {d for d, _, _ in stores.artifacts.iter_blobs()} - blobs_before
    assert second.version.version == 2
    assert len(new_blobs) == 2  # b.csv and the new manifest; a.csv is stored once
    again = sp.versioned.run()
    assert again.load("doubled") == 6 and again.cached_steps == []
    pinned = sp.versioned.run(ref="raw@1")
    assert pinned.load("doubled") == 4 and pinned.cached_steps == ["count_rows", "doubled"]


def test_unknown_data_version_fails_before_the_run(home: Path) -> None:
    with pytest.raises(DataVersionError, match="ctloop data add nothing"):
        sp.versioned.run(ref="nothing")
    assert Workspace.open().metadata.list_runs() == []


def test_resume_reads_the_version_the_run_started_with(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n2\n")
    stores = Workspace.open()
    _add(folder, stores)
    broken = tmp_path / "broken"
    broken.write_text("1")
    monkeypatch.setenv("BOOM_FILE", str(broken))
    with pytest.raises(StepError) as caught:
        sp.versioned.run()
    (folder / "b.csv").write_text("x\n3\n4\n5\n")
    assert _add(folder, stores).version.version == 2  # a newer version arrives meanwhile
    broken.unlink()
    resumed = resume_run(caught.value.run_id)
    assert resumed.load("doubled") == 4  # still version 1's two rows
    assert sp.versioned.run().load("doubled") == 10  # a new run takes the latest
