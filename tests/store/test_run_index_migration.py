"""Migration 0009 indexes runs for newest-first pages and metrics by key: a 0008
database keeps its runs, and a page of runs (of all, of a pipeline, of a status) is one
index range, with no sort of every run (SQLite's query plan says so)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

PAGE = (
    "SELECT id FROM runs WHERE {where} started_at < :before "
    "ORDER BY started_at DESC, id DESC LIMIT 101"
)


def _plan(connection: sa.Connection, sql: str) -> str:
    rows = connection.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}"), {"before": "9999"})
    return " | ".join(str(row[-1]) for row in rows)


def test_migration_0009_keeps_runs_and_pages_them_from_an_index(tmp_path: Path) -> None:
    from alembic import command

    from ctloop.store._sql import SqlMetadataStore
    from ctloop.store.migrations import alembic_config, current_revision

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0008")
        for n in range(3):
            connection.execute(
                sa.text(
                    "INSERT INTO runs (id, pipeline, pipeline_version, reference, parameters, "
                    "trigger, user, host, pid, status, started_at, executor) VALUES "
                    "(:id, 'p', 'v', 'r', '{}', 'manual', 'u', 'h', 1, 'succeeded', :t, 'local')"
                ),
                {"id": f"run{n}", "t": f"2026-06-0{n + 1} 00:00:00.000000"},
            )
        command.upgrade(alembic_config(connection), "0009")
        assert current_revision(connection) == "0009"
        for where, index in (
            ("", "ix_runs_started_at_id"),
            ("pipeline = 'p' AND", "ix_runs_pipeline_started_at_id"),
            ("status = 'failed' AND", "ix_runs_status_started_at_id"),
        ):
            plan = _plan(connection, PAGE.format(where=where))
            assert index in plan and "TEMP B-TREE" not in plan, plan
        plan = _plan(connection, "SELECT run_id, value FROM metrics WHERE key = 'auc'")
        assert "ix_metrics_key_run_id" in plan, plan
    engine.dispose()

    store = SqlMetadataStore(url)
    assert [run.id for run in store.list_runs(pipeline="p")] == ["run2", "run1", "run0"]
    store.close()

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0008")
        names = {i["name"] for i in sa.inspect(connection).get_indexes("runs")}
        assert {"ix_runs_started_at", "ix_runs_pipeline"} <= names
        assert "ix_runs_pipeline_started_at_id" not in names
    engine.dispose()


@pytest.mark.parametrize("revision", ["0009"])
def test_the_head_is_this_migration_or_one_after_it(revision: str) -> None:
    from alembic.script import ScriptDirectory

    from ctloop.store.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    assert script.get_revision(revision) is not None
