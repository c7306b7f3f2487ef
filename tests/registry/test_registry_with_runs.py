"""The registry together with real runs: lineage of a version, garbage collection, and a
database that an older ctloop created (schema 0001) upgraded in place."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop.artifacts import load_value
from ctloop.registry import SqlModelRegistry
from ctloop.registry._lineage import model_lineage
from ctloop.store._gc import collect_garbage
from ctloop.store._sql import SqlMetadataStore
from ctloop.store.records import RunRecord
from ctloop.store.workspace import Workspace
from tests.pipeline import sample_pipelines as sp
from tests.store.test_metadata_contract import make_artifact, make_run


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database on each backend."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("fresh_postgres_url"))
    return f"sqlite:///{tmp_path / 'home' / 'metadata.db'}"


@pytest.fixture
def workspace(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The workspace of a private ctloop home whose metadata lives at ``store_url``."""
    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CTLOOP_STORE_URL", store_url)
    monkeypatch.delenv("CTLOOP_ARTIFACT_URL", raising=False)
    monkeypatch.delenv("CTLOOP_EXECUTOR", raising=False)
    monkeypatch.delenv("CALLS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    return Workspace.open()


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    """200 rows of y = 3x + 1 + noise."""
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 10, 200)
    path = tmp_path / "data.csv"
    pd.DataFrame({"x": x, "y": 3 * x + 1 + rng.normal(0, 0.1, 200)}).to_csv(path, index=False)
    return path


def test_lineage_of_a_version_reaches_data_code_and_parameters(
    workspace: Workspace, csv_path: Path
) -> None:
    result = sp.regression.run(path=csv_path, degree=2, workspace=workspace)
    model_artifact = next(iter(result.outputs["fit"].values()))
    registry = workspace.registry
    registry.register_version("curve", model_artifact.id)
    registry.set_alias("curve", "champion", 1)
    found = model_lineage(registry, workspace.metadata, "curve@champion")
    assert found.version.run_id == result.run_id
    assert found.graph.roots == [model_artifact.id]
    steps = {n.label: n.details for n in found.graph.nodes.values() if n.kind == "execution"}
    assert set(steps) == {"load", "split", "fit"}
    assert steps["fit"]["parameters"]["degree"] == 2 and steps["fit"]["code_hash"]
    assert steps["load"]["pipeline"] == "regression"
    data = found.to_dict()
    assert data["model_version"]["model"] == "curve" and len(data["edges"]) >= 4


def test_gc_keeps_the_artifacts_of_model_versions(
    workspace: Workspace, tmp_path: Path, csv_path: Path
) -> None:
    registered = sp.regression.run(path=csv_path, degree=1, workspace=workspace)
    unregistered = sp.regression.run(path=csv_path, degree=2, workspace=workspace)
    model_artifact = next(iter(registered.outputs["fit"].values()))
    other_artifact = next(iter(unregistered.outputs["fit"].values()))
    registry = workspace.registry
    registry.register_version("curve", model_artifact.id)

    dry = collect_garbage(workspace.metadata, workspace.artifacts, keep_last=0, dry_run=True)
    report = collect_garbage(workspace.metadata, workspace.artifacts, keep_last=0)
    assert (dry.runs_deleted, dry.artifacts_deleted) == (
        report.runs_deleted,
        report.artifacts_deleted,
    )

    # the run that made a registered version is kept, so the model's lineage stays whole
    assert report.runs_deleted == [unregistered.run_id]
    kept = workspace.metadata.get_artifact(model_artifact.id)
    coef = load_value(kept, workspace.artifacts, cache_dir=tmp_path / "fresh-cache")
    assert coef.shape == (2,) and abs(coef[0] - 3) < 0.1
    remaining = {a.id for a in workspace.metadata.list_artifacts()}
    assert other_artifact.id not in remaining and model_artifact.id in remaining
    version = registry.get_version("curve", 1)
    assert (version.artifact_id, version.run_id) == (model_artifact.id, registered.run_id)
    assert workspace.metadata.get_run(registered.run_id).status == "succeeded"


def test_a_0001_database_with_data_upgrades_in_place(store_url: str) -> None:
    from alembic import command
    from sqlalchemy import insert

    from ctloop.store._schema import RUNS, SCHEMA_REVISION
    from ctloop.store._sql_engine import engine_for, forget_engine, writing
    from ctloop.store._sql_statements import insert_artifacts
    from ctloop.store.migrations import alembic_config, current_revision

    run, artifact = make_run(status="succeeded"), make_artifact(type="Model")
    with writing(engine_for(store_url)).begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
        connection.execute(insert(RUNS), {f.name: getattr(run, f.name) for f in fields(RunRecord)})
        insert_artifacts(connection, [artifact])
        assert current_revision(connection) == "0001"

    registry = SqlModelRegistry(store_url)
    version = registry.register_version("flights", artifact.id, run_id=run.id)
    assert (version.version, version.run_id) == (1, run.id)
    metadata = SqlMetadataStore(store_url)
    assert metadata.get_run(run.id) == run
    assert metadata.get_artifact(artifact.id) == artifact
    with engine_for(store_url).connect() as connection:
        assert current_revision(connection) == SCHEMA_REVISION
    metadata.close()
    forget_engine(store_url)
