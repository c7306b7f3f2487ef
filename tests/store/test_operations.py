"""Operations data (deployments, log batches, alerts) on SQLite and PostgreSQL.

:class:`OperationsContract` holds the tests; each backend's class provides ``store_url``,
a fresh, empty database per test. The alert race starts real processes (``spawn``).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.managers import SyncManager
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import pytest

from ctloop.errors import NotFoundError, StoreError
from ctloop.store import operations as ops
from ctloop.store.sql import SqlMetadataStore
from tests.store.test_metadata_contract import make_artifact

PROCESSES = 4
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def alert_worker(barrier: Any, url: str, key: str) -> bool:
    """Record one alert with ``key`` as soon as every process is ready."""
    ops.list_alerts(url)  # connect and migrate before the race
    barrier.wait(timeout=120)
    record = ops.record_alert(
        url,
        source="monitor",
        subject="flights",
        severity="warning",
        cause="drift",
        details={},
        dedup_key=key,
        cooldown_s=3600,
    )
    return record is not None


@pytest.fixture(scope="module")
def processes() -> Iterator[tuple[Pool, SyncManager]]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(PROCESSES) as pool:
        yield pool, manager


class OperationsContract:
    """Tests the operations functions pass on every database."""

    @pytest.fixture
    def store_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def artifact_ids(self, store_url: str) -> Iterator[list[str]]:
        store = SqlMetadataStore(store_url)
        records = [make_artifact() for _ in range(4)]
        store.put_artifacts(records)
        yield [r.id for r in records]
        store.close()

    # -- deployments --------------------------------------------------------------------
    def test_deployment_history_latest_and_list(self, store_url: str) -> None:
        ops.record_deployment(
            store_url,
            name="flights",
            model="flights",
            action="deploy",
            state={"primary": "champion"},
            reason="first release",
            user="ana",
        )
        canary = ops.record_deployment(
            store_url,
            name="flights",
            model="flights",
            action="canary",
            state={"primary": "champion", "canary": {"version": 4, "traffic": 10.0}},
            reason="v4 beats v3",
        )
        ops.record_deployment(
            store_url, name="taxi", model="taxi", action="deploy", state={}, reason=""
        )
        history = ops.deployment_history(store_url, "flights")
        assert [r.action for r in history] == ["deploy", "canary"]
        assert history[0].created_by == "ana" and history[0].reason == "first release"
        assert history[1] == canary
        assert history[1].state["canary"] == {"version": 4, "traffic": 10.0}
        assert history[1].created_at.tzinfo is not None and history[1].host
        assert [r.action for r in ops.deployment_history(store_url, "flights", limit=1)] == [
            "canary"
        ]
        assert ops.latest_deployment(store_url, "flights") == canary
        assert ops.latest_deployment(store_url, "nothing") is None
        assert [(r.name, r.action) for r in ops.list_deployments(store_url)] == [
            ("flights", "canary"),
            ("taxi", "deploy"),
        ]

    # -- log batches --------------------------------------------------------------------
    def test_prediction_logs_overlapping_a_window(
        self, store_url: str, artifact_ids: list[str]
    ) -> None:
        hour = timedelta(hours=1)
        spans = [(T0, T0 + hour), (T0 + 2 * hour, T0 + 3 * hour), (T0 + 4 * hour, T0 + 5 * hour)]
        for (first, last), artifact_id, version in zip(
            spans, artifact_ids, (1, 2, 2), strict=False
        ):
            ops.add_prediction_log(
                store_url,
                model="flights",
                version=version,
                deployment="flights",
                artifact_id=artifact_id,
                rows=10,
                first_at=first,
                last_at=last,
            )
        ops.add_prediction_log(
            store_url,
            model="taxi",
            version=1,
            deployment=None,
            artifact_id=artifact_ids[3],
            rows=5,
            first_at=T0.timestamp(),
            last_at=T0.timestamp(),
        )
        every = ops.prediction_logs(store_url, "flights")
        assert [b.artifact_id for b in every] == artifact_ids[:3]
        assert every[0].first_at == T0 and every[0].rows == 10
        # 1:30 to 2:30 overlaps only the second batch; epoch seconds work as bounds
        window = ops.prediction_logs(
            store_url, "flights", start=T0 + 1.5 * hour, end=(T0 + 2.5 * hour).timestamp()
        )
        assert [b.artifact_id for b in window] == [artifact_ids[1]]
        assert [b.version for b in ops.prediction_logs(store_url, "flights", version=2)] == [2, 2]
        assert ops.prediction_logs(store_url, "flights", start=T0 + 6 * hour) == []
        with pytest.raises(ValueError, match="no time zone"):
            ops.prediction_logs(store_url, "flights", start=datetime(2026, 1, 1))

    def test_feedback_logs_of_a_model_include_unattributed_ones(
        self, store_url: str, artifact_ids: list[str]
    ) -> None:
        for model, artifact_id in zip(("flights", None, "taxi"), artifact_ids, strict=False):
            batch = ops.add_feedback_log(
                store_url, model=model, artifact_id=artifact_id, rows=3, first_at=T0, last_at=T0
            )
            assert batch.version is None and batch.deployment is None
        assert [b.model for b in ops.feedback_logs(store_url, "flights")] == ["flights", None]
        assert len(ops.feedback_logs(store_url)) == 3
        assert ops.feedback_logs(store_url, "flights", end=T0 - timedelta(seconds=1)) == []

    def test_a_batch_must_name_a_stored_artifact(self, store_url: str) -> None:
        with pytest.raises(StoreError):
            ops.add_feedback_log(
                store_url, model="flights", artifact_id="0" * 32, rows=1, first_at=T0, last_at=T0
            )

    # -- alerts -------------------------------------------------------------------------
    def test_alerts_are_deduplicated_within_the_cooldown(
        self, store_url: str, artifact_ids: list[str]
    ) -> None:
        first = _alert(store_url, "drift:flights", cooldown_s=3600, report=artifact_ids[0])
        assert first is not None and first.report_artifact_id == artifact_ids[0]
        assert first.details == {"psi": 0.3} and first.delivery == {}
        assert _alert(store_url, "drift:flights", cooldown_s=3600) is None
        assert _alert(store_url, "drift:taxi", cooldown_s=3600) is not None
        # no cooldown: every alert is recorded; a tiny one has passed by now
        assert _alert(store_url, "drift:flights", cooldown_s=0) is not None
        time.sleep(0.05)
        assert _alert(store_url, "drift:flights", cooldown_s=0.01) is not None
        assert len(ops.list_alerts(store_url, subject="flights")) == 3
        assert len(ops.list_alerts(store_url)) == 4
        assert ops.list_alerts(store_url, since=time.time() + 60) == []

    def test_alert_delivery_is_recorded_per_sink(self, store_url: str) -> None:
        alert = _alert(store_url, "k", cooldown_s=0)
        assert alert is not None
        ops.update_alert_delivery(store_url, alert.id, "slack", "failed", 1, "HTTP 500")
        updated = ops.update_alert_delivery(store_url, alert.id, "webhook", "sent", 1)
        assert updated.delivery["slack"]["last_error"] == "HTTP 500"
        assert updated.delivery["webhook"]["status"] == "sent"
        stored = ops.list_alerts(store_url)[0]
        assert stored.delivery["slack"]["status"] == "failed"
        assert stored.delivery["webhook"]["attempts"] == 1
        with pytest.raises(NotFoundError, match="alert 999"):
            ops.update_alert_delivery(store_url, 999, "slack", "sent", 1)

    def test_concurrent_writers_record_one_alert(
        self, store_url: str, processes: tuple[Pool, SyncManager]
    ) -> None:
        pool, manager = processes
        barrier = manager.Barrier(PROCESSES)
        jobs = [(barrier, store_url, "drift:flights")] * PROCESSES
        recorded = pool.starmap_async(alert_worker, jobs).get(timeout=300)
        assert sorted(recorded) == [False] * (PROCESSES - 1) + [True]
        assert len(ops.list_alerts(store_url)) == 1


def _alert(
    url: str, key: str, *, cooldown_s: float, report: str | None = None
) -> ops.AlertRecord | None:
    return ops.record_alert(
        url,
        source="monitor",
        subject=key.split(":")[-1],
        severity="warning",
        cause="drift in 'distance'",
        details={"psi": 0.3},
        dedup_key=key,
        report_artifact_id=report,
        cooldown_s=cooldown_s,
    )


class TestSqliteOperations(OperationsContract):
    """On a SQLite file (the default)."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'metadata.db'}"


class TestPostgresOperations(OperationsContract):
    """On a real PostgreSQL server."""

    @pytest.fixture
    def store_url(self, fresh_postgres_url: str) -> str:
        return fresh_postgres_url


def test_to_utc_reads_epoch_seconds_and_aware_datetimes() -> None:
    assert ops.to_utc(T0.timestamp()) == T0
    assert ops.to_utc(T0.astimezone(UTC)) == T0
