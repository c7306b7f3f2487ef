"""Migration 0011 adds ``latest_metrics`` (each run's latest value of each metric) and
fills it from a 0010 database's points: the run's own value before its executions', the
highest step, the newest, the point written last among equals; a run search then reads
the table, and a downgrade drops it and keeps the points."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

RUN = (
    "INSERT INTO runs (id, pipeline, pipeline_version, reference, parameters, trigger, "
    "user, host, pid, status, started_at, executor) VALUES "
    "(:id, 'p', 'v', 'r', '{}', 'manual', 'u', 'h', 1, 'succeeded', :t, 'local')"
)
METRIC = (
    "INSERT INTO metrics (run_id, execution_id, key, value, step, timestamp) "
    "VALUES (:run, :execution, :key, :value, :step, :t)"
)
EXECUTION = (
    "INSERT INTO executions (id, run_id, step, function, code_hash, cache_key, status, "
    "parameters, attempt, created_at) VALUES "
    "(:id, :run, 'train', 'f', 'c', 'k', 'succeeded', '{}', 1, '2026-06-01 00:00:00')"
)
# (run, execution or None, key, value, step, time): the latest of each run and key is
# marked by its value's tenths digit 9
POINTS = [
    ("a", None, "auc", 0.19, 1, "2026-06-01 00:00:01.000000"),
    ("a", "ea", "auc", 0.5, 7, "2026-06-01 00:00:09.000000"),  # an execution's: before
    ("a", None, "auc", 0.1, 0, "2026-06-01 00:00:09.000000"),  # a lower step: before
    ("b", None, "auc", 0.2, None, "2026-06-01 00:00:01.000000"),
    ("b", None, "auc", 0.29, None, "2026-06-01 00:00:01.000000"),  # equal, written last
    ("b", "eb", "loss", 0.3, 2, "2026-06-01 00:00:01.000000"),
    ("b", "eb", "loss", 0.39, 3, "2026-06-01 00:00:00.000000"),
]


def test_migration_0011_fills_latest_metrics_from_the_points(tmp_path: Path) -> None:
    from alembic import command

    from ctloop.store._sql import SqlMetadataStore
    from ctloop.store.migrations import alembic_config, current_revision

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0010")
        for n, run in enumerate("ab"):
            connection.execute(sa.text(RUN), {"id": run, "t": f"2026-06-0{n + 1} 00:00:00"})
        for run in "ab":  # the store enforces foreign keys (a later migration copies rows)
            connection.execute(sa.text(EXECUTION), {"id": f"e{run}", "run": run})
        for run, execution, key, value, step, moment in POINTS:
            values = {"run": run, "execution": execution, "key": key, "value": value}
            connection.execute(sa.text(METRIC), values | {"step": step, "t": moment})
        command.upgrade(alembic_config(connection), "0011")
        assert current_revision(connection) == "0011"
        rows = connection.execute(
            sa.text("SELECT run_id, key, value FROM latest_metrics ORDER BY run_id, key")
        ).all()
        assert [tuple(row) for row in rows] == [
            ("a", "auc", 0.19),
            ("b", "auc", 0.29),
            ("b", "loss", 0.39),
        ]
    engine.dispose()

    store = SqlMetadataStore(url)
    page, total = store.search_runs(sort=("metric", "auc", True))
    assert ([run.id for run in page], total) == (["b", "a"], 2)
    assert store.latest_metric_values("loss") == {"b": 0.39}
    store.close()

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0010")
        assert "latest_metrics" not in sa.inspect(connection).get_table_names()
        count = connection.execute(sa.text("SELECT count(*) FROM metrics")).scalar_one()
        assert count == len(POINTS)
    engine.dispose()


@pytest.mark.parametrize("revision", ["0011"])
def test_the_head_is_this_migration_or_one_after_it(revision: str) -> None:
    from alembic.script import ScriptDirectory

    from ctloop.store.migrations import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    assert script.get_revision(revision) is not None
