"""Feature store definitions on SQLite, PostgreSQL and in memory: one contract.

:class:`FeatureRegistryContract` holds the tests; each backend's class provides
``workspace``, a fresh, empty one per test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from ctloop.errors import NotFoundError
from ctloop.store._features import DefinitionDraft, spec_digest
from ctloop.store.workspace import Workspace
from tests.store._workspaces import (
    MemoryWorkspace,
    PostgresWorkspace,
    RemoteWorkspace,
    SqliteWorkspace,
)

ORIGIN = DefinitionDraft("entity", "origin", {"join_keys": ["origin"]})


def weather(ttl: int = 21600) -> DefinitionDraft:
    return DefinitionDraft("feature_view", "weather", {"source": "w.parquet", "ttl_seconds": ttl})


class FeatureRegistryContract:
    """Tests every feature registry passes."""

    @pytest.fixture
    def workspace(self) -> Iterator[Workspace]:
        raise NotImplementedError

    def test_applying_records_version_one_of_each_definition(self, workspace: Workspace) -> None:
        made = workspace.features.apply([weather(), ORIGIN], applied_by="ana")
        assert [(r.kind, r.name, r.version, r.applied_by) for r in made] == [
            ("feature_view", "weather", 1, "ana"),
            ("entity", "origin", 1, "ana"),
        ]
        assert [r.name for r in workspace.features.list()] == ["origin", "weather"]
        assert workspace.features.get("weather").spec == weather().spec
        assert workspace.features.get("weather").digest == spec_digest(weather().spec)

    def test_an_unchanged_apply_writes_nothing_and_a_change_a_new_version(
        self, workspace: Workspace
    ) -> None:
        workspace.features.apply([ORIGIN, weather()])
        assert workspace.features.apply([ORIGIN, weather()]) == []
        made = workspace.features.apply([ORIGIN, weather(ttl=3600)])
        assert [(r.name, r.version) for r in made] == [("weather", 2)]
        assert workspace.features.get("weather").spec["ttl_seconds"] == 3600
        assert workspace.features.get("weather", version=1).spec["ttl_seconds"] == 21600
        assert [r.version for r in workspace.features.history("weather")] == [1, 2]
        assert [r.version for r in workspace.features.list()] == [1, 2]

    def test_the_revision_grows_with_every_version_applied_and_only_then(
        self, workspace: Workspace
    ) -> None:
        assert workspace.features.revision() == 0
        workspace.features.apply([ORIGIN, weather()])
        first = workspace.features.revision()
        assert first > 0
        workspace.features.apply([ORIGIN, weather()])
        assert workspace.features.revision() == first
        workspace.features.apply([weather(ttl=60)])
        assert workspace.features.revision() > first

    def test_a_name_may_be_used_once_per_kind(self, workspace: Workspace) -> None:
        workspace.features.apply(
            [ORIGIN, DefinitionDraft("feature_service", "origin", {"views": []})]
        )
        assert workspace.features.get("origin").kind == "entity"
        assert workspace.features.get("origin", kind="feature_service").spec == {"views": []}
        assert len(workspace.features.list()) == 2

    def test_missing_definitions_and_unknown_kinds_are_named(self, workspace: Workspace) -> None:
        with pytest.raises(NotFoundError, match="feature definition 'nope' does not exist"):
            workspace.features.get("nope")
        workspace.features.apply([ORIGIN])
        with pytest.raises(NotFoundError, match="version 7 of feature definition 'origin'"):
            workspace.features.get("origin", version=7)
        with pytest.raises(ValueError, match="definition kind 'table' is unknown"):
            DefinitionDraft("table", "t", {})
        assert workspace.features.history("nope") == []

    def test_concurrent_applies_of_changes_number_versions_without_gaps(
        self, workspace: Workspace
    ) -> None:
        def apply(ttl: int) -> None:
            workspace.features.apply([weather(ttl)])

        threads = [threading.Thread(target=apply, args=(60 * (i + 1),)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        versions = [r.version for r in workspace.features.history("weather")]
        assert versions == list(range(1, len(versions) + 1)) and len(versions) >= 1

    def test_the_watermark_is_the_latest_end_materialized(self, workspace: Workspace) -> None:
        features = workspace.features
        assert features.watermark("weather") is None
        assert features.materializations() == []
        first = datetime(2024, 1, 2, tzinfo=UTC)
        made = features.record_materialization(
            "weather", start=None, end=first, rows_read=10, rows_written=10, by="ana"
        )
        earlier = features.record_materialization(
            "weather", start=first - timedelta(days=5), end=first - timedelta(days=1),
            rows_read=3, rows_written=0,
        )  # fmt: skip
        features.record_materialization(
            "other", start=None, end=first + timedelta(days=9), rows_read=1, rows_written=1
        )
        assert features.watermark("weather") == first
        assert features.materializations("weather") == [made, earlier]
        assert (made.view, made.start, made.rows_read, made.by) == ("weather", None, 10, "ana")
        assert made.at.tzinfo is not None
        assert len(features.materializations()) == 3

    def test_a_watermark_in_another_zone_reads_back_as_the_same_instant_in_utc(
        self, workspace: Workspace
    ) -> None:
        end = datetime(2024, 1, 2, 3, tzinfo=timezone(timedelta(hours=2)))
        workspace.features.record_materialization(
            "weather", start=None, end=end, rows_read=1, rows_written=1
        )
        watermark = workspace.features.watermark("weather")
        assert watermark == end and watermark is not None
        assert watermark.utcoffset() == timedelta(0)

    def test_a_naive_time_is_refused_before_anything_is_recorded(
        self, workspace: Workspace
    ) -> None:
        with pytest.raises(ValueError, match="has no time zone"):
            workspace.features.record_materialization(
                "weather", start=None, end=datetime(2024, 1, 2), rows_read=1, rows_written=1
            )
        assert workspace.features.materializations() == []


class TestSqliteFeatureRegistry(SqliteWorkspace, FeatureRegistryContract):
    """On a SQLite file."""


class TestPostgresFeatureRegistry(PostgresWorkspace, FeatureRegistryContract):
    """On PostgreSQL."""


class TestMemoryFeatureRegistry(MemoryWorkspace, FeatureRegistryContract):
    """In memory (:meth:`Workspace.in_memory`)."""


class TestRemoteFeatureRegistry(RemoteWorkspace, FeatureRegistryContract):
    """Over HTTP, through a live ``ctloop server`` on a fresh SQLite workspace."""


def test_migration_0005_adds_the_table_to_a_0004_database_and_removes_it_again(
    tmp_path: Path,
) -> None:
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from ctloop.store.migrations import alembic_config, current_revision

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0004")
        assert not inspect(connection).has_table("feature_definitions")
        command.upgrade(alembic_config(connection), "0005")
        assert inspect(connection).has_table("feature_definitions")
        assert inspect(connection).has_table("api_keys")
        command.downgrade(alembic_config(connection), "0004")
        assert not inspect(connection).has_table("feature_definitions")
        assert current_revision(connection) == "0004"
    engine.dispose()


def test_migration_0006_adds_the_materializations_table_to_a_0005_database_and_removes_it(
    tmp_path: Path,
) -> None:
    from alembic import command
    from sqlalchemy import create_engine, inspect

    from ctloop.store.migrations import alembic_config, current_revision

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0005")
        assert not inspect(connection).has_table("feature_materializations")
        command.upgrade(alembic_config(connection), "0006")
        assert inspect(connection).has_table("feature_materializations")
        assert inspect(connection).has_table("feature_definitions")
        command.downgrade(alembic_config(connection), "0005")
        assert not inspect(connection).has_table("feature_materializations")
        assert current_revision(connection) == "0005"
    engine.dispose()
