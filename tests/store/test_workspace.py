"""The workspace: one object holding a project's stores, in memory or on SQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ctloop.store import ArtifactStore, MetadataStore
from ctloop.store._approvals import ApprovalStore
from ctloop.store._audit import AuditLog
from ctloop.store._features import FeatureRegistry
from ctloop.store._fs_artifacts import LocalArtifactStore
from ctloop.store._keys import KeyStore
from ctloop.store._online import OnlineStore
from ctloop.store._operations import AlertStore, DeploymentStore, LogStore
from ctloop.store._triggers import FiringClaim, TriggerStore
from ctloop.store.records import FileEntry
from ctloop.store.registry import ModelRegistry
from ctloop.store.workspace import Workspace
from tests.store.test_metadata_contract import make_artifact, make_run

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
#: every store of a workspace and the interface it implements, whatever the backend
INTERFACES: dict[str, type] = {
    "metadata": MetadataStore,
    "artifacts": ArtifactStore,
    "registry": ModelRegistry,
    "deployments": DeploymentStore,
    "logs": LogStore,
    "alerts": AlertStore,
    "triggers": TriggerStore,
    "keys": KeyStore,
    "audit": AuditLog,
    "features": FeatureRegistry,
    "online": OnlineStore,
    "approvals": ApprovalStore,
}


@pytest.fixture
def sql_workspace(tmp_path: Path) -> Iterator[Workspace]:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    with Workspace.open(url, artifacts=str(tmp_path / "artifacts")) as workspace:
        yield workspace


def stored_model(workspace: Workspace) -> str:
    """Write a one-file model into the workspace's artifact store and register its
    artifact in the metadata; returns the artifact id."""
    data = b"weights of a tiny model"
    digest = workspace.artifacts.put_bytes(data)
    artifact = replace(
        make_artifact(type="Model"),
        digest=digest,
        uri=workspace.artifacts.blob_uri(digest),
        size=len(data),
        files=(FileEntry("model.bin", digest, len(data)),),
    )
    workspace.metadata.put_artifacts([artifact])
    return artifact.id


def test_an_in_memory_workspace_runs_the_loop_end_to_end() -> None:
    workspace = Workspace.in_memory()
    assert isinstance(workspace.artifacts, LocalArtifactStore)
    folder = workspace.artifacts.root
    assert folder.is_dir()
    run = make_run()
    workspace.metadata.create_run(run)
    artifact_id = stored_model(workspace)
    version = workspace.registry.register_version("flights", artifact_id[:8], run_id=run.id)
    assert (version.version, version.artifact_id, version.run_id) == (1, artifact_id, run.id)
    workspace.registry.set_alias("flights", "champion", 1, by="ana")
    assert workspace.registry.resolve("flights@champion") == replace(version, aliases=("champion",))
    deployment = workspace.deployments.record(
        name="flights", model="flights", action="deploy", state={"primary": "champion"}, reason=""
    )
    assert workspace.deployments.latest("flights") == deployment
    logged = make_artifact()  # the batch's Dataset of predictions
    workspace.metadata.put_artifacts([logged])
    batch = workspace.logs.add_predictions(
        model="flights",
        version=1,
        deployment="flights",
        artifact_id=logged.id,
        rows=20,
        first_at=T0,
        last_at=T0 + timedelta(minutes=5),
    )
    assert workspace.logs.predictions("flights") == [batch]
    alert = workspace.alerts.record(
        source="monitor",
        subject="flights",
        severity="warning",
        cause="drift in 'distance'",
        details={"psi": 0.3},
        dedup_key="drift:flights",
    )
    assert alert is not None and workspace.alerts.list(subject="flights") == [alert]
    firing = workspace.triggers.claim(FiringClaim("flights/drift", "flights", "drift", "a1", "x"))
    assert firing.outcome == "claimed"
    assert workspace.metadata.pinned_run_ids() == {run.id}
    model_file = workspace.metadata.get_artifact(version.artifact_id).files[0]
    assert workspace.artifacts.get_bytes(model_file.digest) == b"weights of a tiny model"
    assert workspace.store_url is None and workspace.location == "an in-memory workspace"
    workspace.close()
    assert not folder.exists()


def test_an_in_memory_workspace_keeps_a_given_artifact_folder(tmp_path: Path) -> None:
    with Workspace.in_memory(tmp_path / "artifacts") as workspace:
        digest = workspace.artifacts.put_bytes(b"kept")
    assert workspace.artifacts.get_bytes(digest) == b"kept"
    assert (tmp_path / "artifacts").is_dir()


def test_in_memory_workspaces_share_nothing() -> None:
    with Workspace.in_memory() as first, Workspace.in_memory() as second:
        first.metadata.create_run(make_run())
        first.registry.create_model("flights")
        assert second.metadata.list_runs() == [] and second.registry.list_models() == []
        assert first.artifacts.url != second.artifacts.url


def test_two_sql_workspaces_on_one_database_see_each_others_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    artifacts = str(tmp_path / "artifacts")
    with Workspace.open(url, artifacts=artifacts) as writer:
        run = make_run()
        writer.metadata.create_run(run)
        artifact_id = stored_model(writer)
        writer.registry.register_version("flights", artifact_id, run_id=run.id)
        writer.deployments.record(
            name="flights", model="flights", action="deploy", state={}, reason="first"
        )
        with Workspace.open(url, artifacts=artifacts) as reader:
            assert reader.store_url == url and reader.artifact_url == artifacts
            assert reader.metadata.get_run(run.id) == run
            assert reader.registry.get_version("flights", 1).artifact_id == artifact_id
            digest = reader.metadata.get_artifact(artifact_id).digest
            assert reader.artifacts.get_bytes(digest) == b"weights of a tiny model"
            assert [d.reason for d in reader.deployments.list()] == ["first"]
            reader.registry.set_alias("flights", "champion", 1)
        assert writer.registry.get_by_alias("flights", "champion").version == 1


@pytest.mark.parametrize("name", sorted(INTERFACES))
def test_every_store_has_the_same_interface_in_memory_and_on_sql(
    name: str, sql_workspace: Workspace
) -> None:
    with Workspace.in_memory() as memory:
        assert isinstance(getattr(sql_workspace, name), INTERFACES[name])
        assert isinstance(getattr(memory, name), INTERFACES[name])


def test_the_interfaces_cover_every_store_of_a_workspace() -> None:
    stores = {f.name for f in fields(Workspace) if not f.name.startswith("_")}
    assert stores - {"store_url", "artifact_url", "artifact_options"} == set(INTERFACES)
