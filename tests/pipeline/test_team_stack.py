"""The team stack: PostgreSQL metadata, S3 artifacts, parallel workers — by settings only."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctloop.store.workspace import Workspace
from tests.pipeline import sample_pipelines as sp


@pytest.fixture
def team_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_postgres_url: str, s3_location
) -> Path:
    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CTLOOP_STORE_URL", fresh_postgres_url)
    monkeypatch.setenv("CTLOOP_ARTIFACT_URL", s3_location.url)
    monkeypatch.setenv("CTLOOP_S3_ENDPOINT_URL", s3_location.options["endpoint_url"])
    monkeypatch.setenv("CTLOOP_EXECUTOR", "process")
    return tmp_path / "home"


def test_run_cache_and_recompute_on_postgres_and_s3(team_home: Path, calls, csv_path: Path) -> None:
    first = sp.regression.run(path=csv_path)
    assert first.status == "succeeded"
    stores = Workspace.open()
    assert stores.artifact_url.startswith("s3://")
    assert stores.metadata.get_run(first.run_id).executor == "process"
    assert sorted(calls.take()) == ["fit", "load", "score", "split"]

    second = sp.regression.run(path=csv_path)
    assert second.cached_steps == ["load", "split", "fit", "score"]
    assert calls.take() == []

    for entry in first.outputs["score"]["output"].files:
        stores.artifacts.delete_blob(entry.digest)
    third = sp.regression.run(path=csv_path)
    assert calls.take() == ["score"]
    assert third.load("score") == first.load("score")
