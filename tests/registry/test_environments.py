"""Environments and promotions as a library: settings read from ``environments:``, a
promotion copies a version once, and deciding over a ctloop server needs an admin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctloop.errors import AccessDeniedError, ApprovalError, ConfigError
from ctloop.registry import (
    Environment,
    decide_promotion,
    load_environments,
    promote_model,
)
from ctloop.registry._environments import parse_environments
from ctloop.store.workspace import Workspace
from tests.fixtures.ctloop_server import LiveServer
from tests.serve import _models


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"prod": {"store": "x"}}, "environments.prod has unknown setting(s) store; known:"),
        ({"prod": {"requires_approval": "yes"}}, "requires_approval must be true or false"),
        ({"prod": {"promote_from": "qa"}}, "promote_from names 'qa', which is not an environment"),
        ({"prod": {"store_url": 5}}, "environments.prod.store_url must be a string, not int 5"),
        ({"prod": ["a"]}, "environments.prod must be a mapping of settings, not list"),
    ],
)
def test_a_bad_environment_is_named_with_its_field(section: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_environments(section, "ctloop.yaml")
    assert message in str(caught.value)


def test_environments_come_in_order_with_defaults_and_their_sources(tmp_path: Path) -> None:
    (tmp_path / "ctloop.yaml").write_text(
        "environments:\n  test: {}\n  staging: {endpoint: http://s}\n"
        "  prod: {approval: required, promote_from: test}\n"
    )
    found = load_environments(tmp_path / "ctloop.yaml")
    assert [(e.name, e.source, e.requires_approval) for e in found.values()] == [
        ("test", "project", False),
        ("staging", "test", False),
        ("prod", "test", True),
    ]
    assert found["test"].store_url == "sqlite:///.ctloop/test/metadata.db"
    assert found["staging"].endpoint == "http://s"
    (tmp_path / "empty.yaml").write_text("store_url: sqlite://\n")
    with pytest.raises(ConfigError, match="declares no environments"):
        load_environments(tmp_path / "empty.yaml")


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.in_memory(tmp_path / "source") as workspace:
        _models.register(workspace, "flights", _models.constant(0.25), tmp_path)
        workspace.registry.set_alias("flights", "champion", 1)
        yield workspace


def test_promoting_twice_registers_and_copies_once(source: Workspace, tmp_path: Path) -> None:
    staging = Environment("staging", "memory", "memory", source="test")
    with Workspace.in_memory(tmp_path / "target") as target:
        first = promote_model("flights@champion", staging, source=source, target=target)
        again = promote_model("flights@1", staging, source=source, target=target)
        files = source.metadata.get_artifact(first.source_version.artifact_id).files
        assert first.copied == len(files) + 1  # each file and the manifest
        assert (again.copied, again.version.version) == (0, 1)
        assert [v.version for v in target.registry.list_versions("flights")] == [1]
        assert target.registry.resolve("flights@champion").tags["ctloop.source.version"] == (
            "flights@1"
        )


def test_an_approval_is_of_one_artifact_not_of_a_version_number(
    source: Workspace, tmp_path: Path
) -> None:
    prod = Environment("prod", "memory", "memory", source="staging", requires_approval=True)
    with Workspace.in_memory(tmp_path / "target") as target:
        decide_promotion(
            "flights@1", prod, "approved", source=source, target=target, reason="ok", by="ana"
        )
        _models.register(source, "flights", _models.constant(0.75), tmp_path)
        source.registry.set_alias("flights", "champion", 2)
        with pytest.raises(ApprovalError, match="promoting flights@2 from staging to prod"):
            promote_model("flights@champion", prod, source=source, target=target)
        done = promote_model("flights@1", prod, source=source, target=target)
        assert done.approval is not None and done.approval.decided_by == "ana"


def test_deciding_on_a_ctloop_server_needs_an_admin_key(
    source: Workspace, live_server: LiveServer, served_workspace: Workspace
) -> None:
    prod = Environment("prod", live_server.url, live_server.url, "staging", requires_approval=True)
    editor = served_workspace.keys.create("eve", "editor").secret
    admin = served_workspace.keys.create("ana", "admin").secret
    live_server.serve(served_workspace, auth=True)
    with Workspace.remote(live_server.url, token=editor) as as_editor:
        with pytest.raises(ApprovalError, match="needs an approval"):
            promote_model("flights@1", prod, source=source, target=as_editor)
        with pytest.raises(AccessDeniedError):
            decide_promotion(
                "flights@1", prod, "approved", source=source, target=as_editor, reason="me"
            )
    with Workspace.remote(live_server.url, token=admin) as as_admin:
        decided = decide_promotion(
            "flights@1", prod, "approved", source=source, target=as_admin, reason="reviewed"
        )
        assert decided.state == "approved"
        done = promote_model("flights@1", prod, source=source, target=as_admin)
        assert done.approval is not None and done.approval.state == "deployed"
    assert served_workspace.registry.resolve("flights@champion").version == 1
