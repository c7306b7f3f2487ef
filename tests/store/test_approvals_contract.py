"""Approvals of promotions on SQLite, PostgreSQL, in memory and over HTTP: one contract.

:class:`ApprovalStoreContract` holds the tests; each backend's class provides
``workspace``, a fresh, empty one per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ctloop.errors import ApprovalError, NotFoundError
from ctloop.store.workspace import Workspace
from tests.store._workspaces import (
    MemoryWorkspace,
    PostgresWorkspace,
    RemoteWorkspace,
    SqliteWorkspace,
)


class ApprovalStoreContract:
    """Tests every approval store passes."""

    @pytest.fixture
    def workspace(self) -> Iterator[Workspace]:
        raise NotImplementedError

    def test_a_request_is_approved_then_deployed_with_who_when_and_why(
        self, workspace: Workspace
    ) -> None:
        store = workspace.approvals
        asked = store.request("churn", 7, "d1", "prod", source="staging", by="ci")
        assert (asked.state, asked.requested_by, asked.decided_by) == ("requested", "ci", None)
        approved = store.decide(asked.id, "approved", by="ana", reason="reviewed ci-report")
        assert (approved.state, approved.decided_by, approved.reason) == (
            "approved",
            "ana",
            "reviewed ci-report",
        )
        assert approved.decided_at is not None and approved.decided_at >= asked.requested_at
        deployed = store.mark_deployed(asked.id, version=3)
        assert (deployed.state, deployed.deployed_version) == ("deployed", 3)
        assert store.get(asked.id) == deployed
        assert deployed.describe() == (
            f"#{asked.id} churn@7 staging -> prod: deployed by ana (reviewed ci-report), "
            "now churn@3 there"
        )

    def test_asking_twice_for_the_same_build_returns_the_open_request(
        self, workspace: Workspace
    ) -> None:
        store = workspace.approvals
        first = store.request("churn", 7, "d1", "prod", source="staging", by="ci")
        again = store.request("churn", 7, "d1", "prod", source="staging", by="bob")
        other = store.request("churn", 8, "d2", "prod", source="staging", by="ci")
        assert again == first and other.id != first.id
        assert store.open_request("churn", "d1", "prod") == first
        assert store.open_request("churn", "d1", "staging") is None

    def test_a_rejected_request_is_final_and_the_next_ask_is_a_new_request(
        self, workspace: Workspace
    ) -> None:
        store = workspace.approvals
        asked = store.request("churn", 7, "d1", "prod", source="staging", by="ci")
        store.decide(asked.id, "rejected", by="ana", reason="AUC fell on plan=basic")
        with pytest.raises(
            ApprovalError, match=r"is rejected \(by ana\); it cannot become approved"
        ):
            store.decide(asked.id, "approved", by="bob", reason="looks fine")
        with pytest.raises(ApprovalError, match="cannot become deployed"):
            store.mark_deployed(asked.id, version=1)
        assert store.request("churn", 7, "d1", "prod", source="staging", by="ci").id != asked.id

    def test_a_request_is_not_deployed_before_it_is_approved_nor_decided_without_reason(
        self, workspace: Workspace
    ) -> None:
        store = workspace.approvals
        asked = store.request("churn", 7, "d1", "prod", source="staging", by="ci")
        with pytest.raises(ApprovalError, match="is requested; it cannot become deployed"):
            store.mark_deployed(asked.id, version=1)
        with pytest.raises(ApprovalError, match="needs a reason"):
            store.decide(asked.id, "approved", by="ana", reason="  ")
        with pytest.raises(ApprovalError, match="state 'maybe' is unknown"):
            store.decide(asked.id, "maybe", by="ana", reason="why not")
        assert store.get(asked.id).state == "requested"

    def test_lists_are_newest_first_and_filter_by_model_environment_and_state(
        self, workspace: Workspace
    ) -> None:
        store = workspace.approvals
        a = store.request("churn", 1, "d1", "prod", source="staging", by="ci")
        b = store.request("churn", 2, "d2", "staging", source="test", by="ci")
        c = store.request("prices", 1, "d3", "prod", source="staging", by="ci")
        store.decide(c.id, "approved", by="ana", reason="ok")
        assert [r.id for r in store.list()] == [c.id, b.id, a.id]
        assert [r.id for r in store.list(model="churn")] == [b.id, a.id]
        assert [r.id for r in store.list(environment="prod")] == [c.id, a.id]
        assert [r.id for r in store.list(state="approved")] == [c.id]
        assert [r.id for r in store.list(limit=1)] == [c.id]
        with pytest.raises(ValueError, match="limit 0"):
            store.list(limit=0)

    def test_an_unknown_approval_is_named(self, workspace: Workspace) -> None:
        with pytest.raises(NotFoundError, match="approval #99 does not exist"):
            workspace.approvals.get(99)
        with pytest.raises(NotFoundError, match="approval #99"):
            workspace.approvals.decide(99, "approved", by="ana", reason="ok")


class TestSqliteApprovals(SqliteWorkspace, ApprovalStoreContract):
    """On a SQLite file (the default)."""


class TestPostgresApprovals(PostgresWorkspace, ApprovalStoreContract):
    """On a real PostgreSQL server."""


class TestMemoryApprovals(MemoryWorkspace, ApprovalStoreContract):
    """In memory (:meth:`Workspace.in_memory`)."""


class TestRemoteApprovals(RemoteWorkspace, ApprovalStoreContract):
    """Over HTTP, through a live ``ctloop server`` on a fresh SQLite workspace."""


def test_migration_0007_adds_the_approvals_table_to_a_0006_database_and_removes_it(
    tmp_path: Path,
) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine, inspect

    from ctloop.store.migrations import alembic_config, current_revision

    assert "0007" in [
        s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    ]
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0006")
        assert not inspect(connection).has_table("approvals")
        command.upgrade(alembic_config(connection), "0007")
        assert inspect(connection).has_table("approvals")
        assert inspect(connection).has_table("feature_materializations")
        command.downgrade(alembic_config(connection), "0006")
        assert not inspect(connection).has_table("approvals")
        assert current_revision(connection) == "0006"
    engine.dispose()
