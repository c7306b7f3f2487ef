"""Migration 0008 adds event times to the log tables of a 0007 database, keeping its
batches, which then read by their log times."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa


def test_migration_0008_keeps_old_batches_and_reads_them_by_log_time(tmp_path: Path) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    from ctloop.store._operations import SqlLogStore
    from ctloop.store._schema import SCHEMA_REVISION
    from ctloop.store.migrations import alembic_config, current_revision

    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [SCHEMA_REVISION]
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    logged = datetime(2026, 6, 1, tzinfo=UTC)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0007")
        connection.execute(
            sa.text(
                "INSERT INTO artifacts (id, type, materializer, materializer_version, digest, "
                "uri, size, files, properties, created_at) "
                "VALUES ('a1', 'Dataset', 'parquet', '1', 'd', 'mem://a1', 1, '[]', '{}', :t)"
            ),
            {"t": "2026-06-01 00:00:00.000000"},  # as SQLite keeps UTC times,
        )
        connection.execute(
            sa.text(
                "INSERT INTO prediction_logs (model, version, deployment, artifact_id, rows, "
                "first_at, last_at, created_at) VALUES ('flights', 1, NULL, 'a1', 3, :t, :t, :t)"
            ),
            {"t": "2026-06-01 00:00:00.000000"},  # as SQLite keeps UTC times,
        )
        command.upgrade(alembic_config(connection), "0008")
        columns = {c["name"] for c in sa.inspect(connection).get_columns("feedback_logs")}
        assert {"first_event_at", "last_event_at"} <= columns
    engine.dispose()

    logs = SqlLogStore(url)
    [old] = logs.predictions("flights", start=logged, end=logged, on="event_time")
    assert old.rows == 3 and old.first_event_at is None and old.first_at == logged

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0007")
        columns = {c["name"] for c in sa.inspect(connection).get_columns("prediction_logs")}
        assert "first_event_at" not in columns
        assert current_revision(connection) == "0007"
    engine.dispose()
