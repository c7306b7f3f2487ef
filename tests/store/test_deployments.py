"""Deployments: states, canaries and shadows resolved in the registry, and their history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctloop.errors import AliasNotFoundError, DeploymentError, ModelNotFoundError
from ctloop.store import _deployments as d
from ctloop.store.registry import ModelRegistry
from ctloop.store.workspace import Workspace
from tests.store.test_metadata_contract import make_artifact


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    with Workspace.open(url, artifacts=str(tmp_path / "artifacts")) as workspace:
        yield workspace


@pytest.fixture
def registry(workspace: Workspace) -> ModelRegistry:
    """'flights' with versions 1 (champion), 2 (challenger) and 3."""
    artifacts = [make_artifact(type="Model") for _ in range(3)]
    workspace.metadata.put_artifacts(artifacts)
    registry = workspace.registry
    for artifact in artifacts:
        registry.register_version("flights", artifact.id)
    registry.set_alias("flights", "champion", 1)
    registry.set_alias("flights", "challenger", 2)
    return registry


def test_a_state_round_trips_through_its_dict() -> None:
    state = d.DeploymentState(
        "flights",
        primary="3",
        canary=d.CanarySpec(version=4, traffic=12.5, sticky=False),
        shadow=d.ShadowSpec(version=5),
        rollback=d.RollbackPolicy(max_error_rate=0.01, max_p99_ms=50, window_s=30),
    )
    data = state.to_dict()
    assert data["canary"] == {"version": 4, "traffic": 12.5, "sticky": False}
    assert data["rollback"]["max_p99_ms"] == 50
    assert d.DeploymentState.from_dict(data) == state
    plain = d.DeploymentState.from_dict({"model": "flights"})
    assert (plain.primary, plain.canary, plain.rollback) == ("champion", None, d.RollbackPolicy())


def test_a_canary_lifecycle_is_recorded_and_promotion_moves_the_champion(
    workspace: Workspace, registry: ModelRegistry
) -> None:
    assert d.load_deployment(workspace, "flights") is None
    d.deploy(workspace, "flights", "flights", reason="first release", user="ana")
    policy = d.RollbackPolicy(max_error_rate=0.02, max_p99_ms=80)
    state = d.start_canary(workspace, "flights", "challenger", 10, policy=policy, reason="v2")
    assert state.canary == d.CanarySpec(version=2, traffic=10.0, sticky=True)
    assert d.load_deployment(workspace, "flights") == state
    shadowed = d.start_shadow(workspace, "flights", 3, reason="try v3 quietly")
    assert shadowed.shadow == d.ShadowSpec(3) and shadowed.canary == state.canary
    promoted = d.promote_canary(workspace, "flights", reason="no errors in a day", user="bo")
    assert (promoted.primary, promoted.canary, promoted.shadow) == (
        "champion",
        None,
        d.ShadowSpec(3),
    )
    assert promoted.rollback == policy
    assert registry.get_by_alias("flights", "champion").version == 2
    history = workspace.deployments.history("flights")
    assert [r.action for r in history] == ["deploy", "canary", "shadow", "promote"]
    assert [r.created_by for r in history][::3] == ["ana", "bo"]
    assert history[-1].reason == "no errors in a day"


def test_stopping_and_rolling_back_clear_the_canary(
    workspace: Workspace, registry: ModelRegistry
) -> None:
    d.deploy(workspace, "flights", "flights", primary="1")
    d.start_canary(workspace, "flights", "2", 50, sticky=False)
    assert d.stop_canary(workspace, "flights").canary is None
    d.start_canary(workspace, "flights", "challenger", 5)
    state = d.rollback_canary(workspace, "flights", reason="p99 200 ms > 80 ms", automatic=True)
    assert state.canary is None and state.primary == "1"
    actions = [r.action for r in workspace.deployments.history("flights")]
    assert actions == ["deploy", "canary", "stop", "canary", "auto-rollback"]
    assert registry.get_by_alias("flights", "champion").version == 1


def test_bad_changes_are_refused_with_the_fix(
    workspace: Workspace, registry: ModelRegistry
) -> None:
    with pytest.raises(DeploymentError, match=r"'flights' does not exist.*ctloop deploy flights"):
        d.start_canary(workspace, "flights", "challenger", 10)
    with pytest.raises(ModelNotFoundError):
        d.deploy(workspace, "taxi", "taxi")
    d.deploy(workspace, "flights", "flights")
    with pytest.raises(DeploymentError, match=r"traffic 150 .* from 0 to 100"):
        d.start_canary(workspace, "flights", "challenger", 150)
    with pytest.raises(AliasNotFoundError):
        d.start_canary(workspace, "flights", "staging", 10)
    with pytest.raises(DeploymentError, match="no canary to promote"):
        d.promote_canary(workspace, "flights")
    with pytest.raises(DeploymentError, match="no shadow to stop"):
        d.stop_shadow(workspace, "flights")
    assert [r.action for r in workspace.deployments.history("flights")] == ["deploy"]
    assert workspace.deployments.history("taxi") == []
