"""Migration 0014 lets a metric value be NaN (held as NULL): a 0013 database upgrades
with its points and each run's latest value kept (indexes included), takes NaN on SQLite
and PostgreSQL afterwards, turns PostgreSQL's native NaN into NULL, and a downgrade drops
the NaN points and restores NOT NULL."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sqlalchemy as sa

RUN = (
    "INSERT INTO runs (id, pipeline, pipeline_version, reference, parameters, trigger, "
    '"user", host, pid, status, started_at, executor) VALUES '
    "(:id, 'p', 'v', 'r', '{}', 'manual', 'u', 'h', 1, 'succeeded', :t, 'local')"
)
METRIC = (
    "INSERT INTO metrics (run_id, execution_id, key, value, step, timestamp) "
    "VALUES (:run, NULL, :key, :value, :step, :t)"
)
LATEST = (
    "INSERT INTO latest_metrics (run_id, key, value, own, step, timestamp) "
    "VALUES (:run, :key, :value, 1, :step, :t)"
)


def _nullable(connection: sa.Connection) -> dict[str, bool]:
    inspector = sa.inspect(connection)
    return {
        table: next(c for c in inspector.get_columns(table) if c["name"] == "value")["nullable"]
        for table in ("metrics", "latest_metrics")
    }


def _indexes(connection: sa.Connection) -> dict[str, set[str]]:
    inspector = sa.inspect(connection)
    return {
        table: {str(index["name"]) for index in inspector.get_indexes(table)}
        for table in ("metrics", "latest_metrics")
    }


def _fill_0013(connection: sa.Connection, *, native_nan: bool) -> None:
    connection.execute(sa.text(RUN), {"id": "a", "t": "2026-06-01 00:00:00"})
    points = [("auc", 0.5, 1), ("auc", 0.75, 2), ("loss", math.inf, 1)]
    if native_nan:  # PostgreSQL held NaN before 0014 (its driver writes it natively)
        points.append(("grad", math.nan, 1))
    for key, value, step in points:
        values = {"run": "a", "key": key, "value": value, "step": step, "t": "2026-06-01"}
        connection.execute(sa.text(METRIC), values)
    for key, value, step in [("auc", 0.75, 2), ("loss", math.inf, 1)] + (
        [("grad", math.nan, 1)] if native_nan else []
    ):
        values = {"run": "a", "key": key, "value": value, "step": step, "t": "2026-06-01"}
        connection.execute(sa.text(LATEST), values)


def _check_upgrade_and_downgrade(url: str, *, native_nan: bool) -> None:
    from alembic import command

    from ctloop.store._sql import SqlMetadataStore
    from ctloop.store.migrations import alembic_config, current_revision
    from ctloop.store.records import MetricRecord

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0013")
        before = _indexes(connection)
        _fill_0013(connection, native_nan=native_nan)
        command.upgrade(alembic_config(connection), "0014")
        assert current_revision(connection) == "0014"
        assert _nullable(connection) == {"metrics": True, "latest_metrics": True}
        assert _indexes(connection) == before
        nulls = connection.execute(
            sa.text("SELECT count(*) FROM metrics WHERE value IS NULL")
        ).scalar_one()
        assert nulls == (1 if native_nan else 0)
    engine.dispose()

    store = SqlMetadataStore(url)
    assert store.latest_metric_values("auc") == {"a": 0.75}
    assert store.latest_metric_values("loss") == {"a": math.inf}
    if native_nan:
        assert math.isnan(store.latest_metric_values("grad")["a"])
    store.log_batch(metrics=[MetricRecord("a", "auc", math.nan, 3)])
    assert math.isnan(store.get_metrics("a", "auc")[-1].value)
    assert math.isnan(store.latest_metric_values("auc")["a"])
    store.close()

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0013")
        assert _nullable(connection) == {"metrics": False, "latest_metrics": False}
        assert _indexes(connection) == before
        rows = connection.execute(
            sa.text("SELECT key, value FROM latest_metrics ORDER BY key")
        ).all()
        assert [tuple(row) for row in rows] == [("auc", 0.75), ("loss", math.inf)]
        count = connection.execute(sa.text("SELECT count(*) FROM metrics")).scalar_one()
        assert count == 3
    engine.dispose()


def test_migration_0014_on_sqlite(tmp_path: Path) -> None:
    _check_upgrade_and_downgrade(f"sqlite:///{tmp_path / 'old.db'}", native_nan=False)


def test_migration_0014_keeps_latest_metrics_without_rowid_on_sqlite(tmp_path: Path) -> None:
    from alembic import command

    from ctloop.store.migrations import alembic_config

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'new.db'}")
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0014")
        sql = connection.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE name = 'latest_metrics'")
        ).scalar_one()
        assert "WITHOUT ROWID" in sql
        partial = connection.execute(
            sa.text(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_latest_metrics_key_run_id_value'"
            )
        ).scalar_one()
        assert partial.rstrip().endswith("WHERE 0")
    engine.dispose()


@pytest.mark.postgres
def test_migration_0014_on_postgresql(fresh_postgres_url: str) -> None:
    _check_upgrade_and_downgrade(fresh_postgres_url, native_nan=True)


@pytest.mark.parametrize("revision", ["0014"])
def test_the_head_is_this_migration_or_one_after_it(revision: str) -> None:
    from alembic.script import ScriptDirectory

    from ctloop.store.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    assert script.get_revision(revision) is not None
