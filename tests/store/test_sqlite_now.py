"""Writing metric points to a SQLite file at once or not at all: the same rows as
``log_batch``, nothing written (and ``False``) whenever it would have to wait or fails."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ctloop.store._audit import AuditDraft, SqlAuditLog
from ctloop.store._sql import SqlMetadataStore
from ctloop.store._sqlite_now import CHECKPOINT_EVERY
from ctloop.store.records import MetricRecord, RunRecord, new_id, utcnow
from ctloop.store.statuses import RunStatus

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _run(store: SqlMetadataStore) -> str:
    run = RunRecord(
        id=new_id(), pipeline="p", pipeline_version="1", reference="r", parameters={},
        trigger="manual", user="u", host="", pid=0, status=RunStatus.RUNNING,
        started_at=utcnow(), executor="local",
    )  # fmt: skip
    store.create_run(run)
    return run.id


@pytest.fixture
def store(tmp_path: Path) -> SqlMetadataStore:
    return SqlMetadataStore(f"sqlite:///{tmp_path / 'm.db'}")


def _points(run_id: str) -> list[MetricRecord]:
    return [
        MetricRecord(run_id, "loss", 0.5, 1, None, WHEN),
        MetricRecord(run_id, "loss", 0.25, 2, None, WHEN),
        MetricRecord(run_id, "auc", 0.75, None, None, WHEN),
    ]


def test_points_written_now_read_back_as_log_batch_writes_them(store: SqlMetadataStore) -> None:
    now_run, batch_run = _run(store), _run(store)
    draft = AuditDraft("ana", "mlflow.run.log", "run x", key_id="k1", detail={"metrics": 3},
                       remote="10.0.0.1")  # fmt: skip
    assert store.log_metrics_now(_points(now_run), draft)
    store.log_batch(metrics=_points(batch_run), audit=draft)

    def seen(run_id: str) -> list[tuple[object, ...]]:
        return [(m.key, m.value, m.step, m.timestamp) for m in store.get_metrics(run_id)]

    assert seen(now_run) == seen(batch_run) and len(seen(now_run)) == 3
    assert store.get_metrics(now_run)[0].timestamp == WHEN
    for key, value in (("loss", 0.25), ("auc", 0.75)):
        assert store.latest_metric_values(key, [now_run, batch_run]) == {
            now_run: value,
            batch_run: value,
        }
    first, second = reversed(SqlAuditLog(store.url).list())
    assert (first.actor, first.action, first.object, first.key_id, first.detail, first.remote,
            first.status) == ("ana", "mlflow.run.log", "run x", "k1", {"metrics": 3},
                              "10.0.0.1", 200)  # fmt: skip
    assert second.id == first.id + 1 and first.at.tzinfo is not None
    store.close()


def test_nothing_is_written_while_another_connection_holds_the_lock(
    store: SqlMetadataStore, tmp_path: Path
) -> None:
    run_id = _run(store)
    draft = AuditDraft("ana", "mlflow.run.log", "run x")
    holder = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    assert store.log_metrics_now(_points(run_id), draft) is False
    holder.execute("COMMIT")
    holder.close()
    assert store.get_metrics(run_id) == [] and SqlAuditLog(store.url).list() == []
    assert store.log_metrics_now(_points(run_id), draft)  # free again: written
    assert len(store.get_metrics(run_id)) == 3
    store.close()


def test_a_point_of_a_missing_run_is_refused_and_nothing_written(store: SqlMetadataStore) -> None:
    draft = AuditDraft("ana", "mlflow.run.log", "run x")
    good = _run(store)
    points = [*_points(good), MetricRecord("no-such-run", "loss", 1.0, 0, None, WHEN)]
    assert store.log_metrics_now(points, draft) is False  # the foreign key holds
    assert store.get_metrics(good) == [] and SqlAuditLog(store.url).list() == []
    assert store.log_metrics_now(_points(good), draft)  # the connection still works
    store.close()


def test_only_a_sqlite_file_is_written_now() -> None:
    memory = SqlMetadataStore("sqlite://")
    assert memory.log_metrics_now(_points(_run(memory)), AuditDraft("a", "b", "c")) is False
    assert memory.get_metrics("x") == []


def test_the_write_ahead_log_is_checkpointed(store: SqlMetadataStore, tmp_path: Path) -> None:
    """The writer's connection never checkpoints on commit; a thread does, so the points
    reach the database file itself."""
    run_id = _run(store)
    draft = AuditDraft("ana", "mlflow.run.log", "run x")
    with sqlite3.connect(tmp_path / "m.db") as other:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    other.close()
    database = tmp_path / "m.db"
    before = database.stat().st_size
    for step in range(CHECKPOINT_EVERY * 3):
        assert store.log_metrics_now([MetricRecord(run_id, "m", 1.0, step, None, WHEN)], draft)
    deadline = time.monotonic() + 10
    while database.stat().st_size <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert database.stat().st_size > before
    assert len(store.get_metrics(run_id)) == CHECKPOINT_EVERY * 3
    store.close()
