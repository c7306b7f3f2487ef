"""The operations stores of a workspace (deployments, log batches, alerts) on SQLite,
PostgreSQL and in memory: one contract.

:class:`OperationsContract` holds the tests; each backend's class provides
``workspace``, a fresh, empty one per test. The SQL alert race starts real processes
(``spawn``); the memory store's races threads.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.managers import SyncManager
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import pytest

from ctloop.errors import NotFoundError, StoreError
from ctloop.store import _operations as ops
from ctloop.store._gc import collect_garbage
from ctloop.store._triggers import FiringClaim
from ctloop.store.workspace import Workspace
from tests.store.test_metadata_contract import make_artifact, make_run

PROCESSES = 4
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def alert_worker(barrier: Any, url: str, key: str) -> bool:
    """Record one alert with ``key`` as soon as every process is ready."""
    alerts = ops.SqlAlertStore(url)
    alerts.list()  # connect and migrate before the race
    barrier.wait(timeout=120)
    record = alerts.record(
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
    """Tests the operations stores pass on every backend."""

    @pytest.fixture
    def workspace(self) -> Iterator[Workspace]:
        raise NotImplementedError

    @pytest.fixture
    def artifact_ids(self, workspace: Workspace) -> list[str]:
        records = [make_artifact() for _ in range(4)]
        workspace.metadata.put_artifacts(records)
        return [r.id for r in records]

    # -- deployments --------------------------------------------------------------------
    def test_deployment_history_latest_and_list(self, workspace: Workspace) -> None:
        workspace.deployments.record(
            name="flights",
            model="flights",
            action="deploy",
            state={"primary": "champion"},
            reason="first release",
            user="ana",
        )
        canary = workspace.deployments.record(
            name="flights",
            model="flights",
            action="canary",
            state={"primary": "champion", "canary": {"version": 4, "traffic": 10.0}},
            reason="v4 beats v3",
        )
        workspace.deployments.record(
            name="taxi", model="taxi", action="deploy", state={}, reason=""
        )
        history = workspace.deployments.history("flights")
        assert [r.action for r in history] == ["deploy", "canary"]
        assert history[0].created_by == "ana" and history[0].reason == "first release"
        assert history[1] == canary
        assert history[1].state["canary"] == {"version": 4, "traffic": 10.0}
        assert history[1].created_at.tzinfo is not None and history[1].host
        assert [r.action for r in workspace.deployments.history("flights", limit=1)] == ["canary"]
        assert workspace.deployments.latest("flights") == canary
        assert workspace.deployments.latest("nothing") is None
        assert [(r.name, r.action) for r in workspace.deployments.list()] == [
            ("flights", "canary"),
            ("taxi", "deploy"),
        ]

    # -- log batches --------------------------------------------------------------------
    def test_prediction_logs_overlapping_a_window(
        self, workspace: Workspace, artifact_ids: list[str]
    ) -> None:
        hour = timedelta(hours=1)
        spans = [(T0, T0 + hour), (T0 + 2 * hour, T0 + 3 * hour), (T0 + 4 * hour, T0 + 5 * hour)]
        for (first, last), artifact_id, version in zip(
            spans, artifact_ids, (1, 2, 2), strict=False
        ):
            workspace.logs.add_predictions(
                model="flights",
                version=version,
                deployment="flights",
                artifact_id=artifact_id,
                rows=10,
                first_at=first,
                last_at=last,
            )
        workspace.logs.add_predictions(
            model="taxi",
            version=1,
            deployment=None,
            artifact_id=artifact_ids[3],
            rows=5,
            first_at=T0.timestamp(),
            last_at=T0.timestamp(),
        )
        every = workspace.logs.predictions("flights")
        assert [b.artifact_id for b in every] == artifact_ids[:3]
        assert every[0].first_at == T0 and every[0].rows == 10
        # 1:30 to 2:30 overlaps only the second batch; epoch seconds work as bounds
        window = workspace.logs.predictions(
            "flights", start=T0 + 1.5 * hour, end=(T0 + 2.5 * hour).timestamp()
        )
        assert [b.artifact_id for b in window] == [artifact_ids[1]]
        assert [b.version for b in workspace.logs.predictions("flights", version=2)] == [2, 2]
        assert workspace.logs.predictions("flights", start=T0 + 6 * hour) == []
        with pytest.raises(ValueError, match="no time zone"):
            workspace.logs.predictions("flights", start=datetime(2026, 1, 1))

    def test_feedback_logs_of_a_model_include_unattributed_ones(
        self, workspace: Workspace, artifact_ids: list[str]
    ) -> None:
        for model, artifact_id in zip(("flights", None, "taxi"), artifact_ids, strict=False):
            batch = workspace.logs.add_feedback(
                model=model, artifact_id=artifact_id, rows=3, first_at=T0, last_at=T0
            )
            assert batch.version is None and batch.deployment is None
        assert [b.model for b in workspace.logs.feedback("flights")] == ["flights", None]
        assert len(workspace.logs.feedback()) == 3
        assert workspace.logs.feedback("flights", end=T0 - timedelta(seconds=1)) == []

    def test_logs_read_on_event_time_window_by_what_the_rows_are_about(
        self, workspace: Workspace, artifact_ids: list[str]
    ) -> None:
        day = timedelta(days=1)
        # a replay: both batches logged now, about events a week apart in the past
        history = [(T0 - 14 * day, T0 - 13 * day), (T0 - 7 * day, T0 - 6 * day)]
        for (first, last), artifact_id in zip(history, artifact_ids, strict=False):
            workspace.logs.add_predictions(
                model="flights",
                version=1,
                deployment=None,
                artifact_id=artifact_id,
                rows=10,
                first_at=T0,
                last_at=T0,
                first_event_at=first,
                last_event_at=last,
            )
        labels = workspace.logs.add_feedback(
            model="flights", artifact_id=artifact_ids[2], rows=1, first_at=T0, last_at=T0
        )
        assert labels.first_event_at == T0  # no event time given: the log time
        week_ago = {"start": T0 - 8 * day, "end": T0 - 5 * day}
        found = workspace.logs.predictions("flights", **week_ago, on="event_time")
        assert [b.artifact_id for b in found] == [artifact_ids[1]]
        assert found[0].first_event_at == T0 - 7 * day and found[0].first_at == T0
        assert workspace.logs.predictions("flights", **week_ago) == []  # logged today
        assert workspace.logs.feedback("flights", **week_ago, on="event_time") == []
        every = workspace.logs.predictions("flights", on="event_time")
        assert [b.artifact_id for b in every] == artifact_ids[:2]
        with pytest.raises(ValueError, match="arrival"):
            workspace.logs.predictions("flights", on="arrival")

    def test_a_batch_must_name_a_stored_artifact(self, workspace: Workspace) -> None:
        with pytest.raises(StoreError):
            workspace.logs.add_feedback(
                model="flights", artifact_id="0" * 32, rows=1, first_at=T0, last_at=T0
            )

    # -- alerts -------------------------------------------------------------------------
    def test_alerts_are_deduplicated_within_the_cooldown(
        self, workspace: Workspace, artifact_ids: list[str]
    ) -> None:
        first = _alert(workspace, "drift:flights", cooldown_s=3600, report=artifact_ids[0])
        assert first is not None and first.report_artifact_id == artifact_ids[0]
        assert first.details == {"psi": 0.3} and first.delivery == {}
        assert _alert(workspace, "drift:flights", cooldown_s=3600) is None
        assert _alert(workspace, "drift:taxi", cooldown_s=3600) is not None
        # no cooldown: every alert is recorded; a tiny one has passed by now
        assert _alert(workspace, "drift:flights", cooldown_s=0) is not None
        time.sleep(0.05)
        assert _alert(workspace, "drift:flights", cooldown_s=0.01) is not None
        assert len(workspace.alerts.list(subject="flights")) == 3
        assert len(workspace.alerts.list()) == 4
        assert workspace.alerts.list(since=time.time() + 60) == []

    def test_alert_delivery_is_recorded_per_sink(self, workspace: Workspace) -> None:
        alert = _alert(workspace, "k", cooldown_s=0)
        assert alert is not None
        workspace.alerts.update_delivery(alert.id, "slack", "failed", 1, "HTTP 500")
        updated = workspace.alerts.update_delivery(alert.id, "webhook", "sent", 1)
        assert updated.delivery["slack"]["last_error"] == "HTTP 500"
        assert updated.delivery["webhook"]["status"] == "sent"
        stored = workspace.alerts.list()[0]
        assert stored.delivery["slack"]["status"] == "failed"
        assert stored.delivery["webhook"]["attempts"] == 1
        with pytest.raises(NotFoundError, match="alert 999"):
            workspace.alerts.update_delivery(999, "slack", "sent", 1)

    # -- garbage collection -------------------------------------------------------------
    def test_gc_keeps_the_artifacts_of_log_batches_and_alert_reports(
        self, workspace: Workspace, artifact_ids: list[str]
    ) -> None:
        predictions, feedback, report, loose = artifact_ids
        workspace.logs.add_predictions(
            model="flights",
            version=1,
            deployment="prod",
            artifact_id=predictions,
            rows=3,
            first_at=T0,
            last_at=T0,
        )
        workspace.logs.add_feedback(
            model="flights", artifact_id=feedback, rows=3, first_at=T0, last_at=T0
        )
        _alert(workspace, "drift:flights", cooldown_s=0, report=report)
        assert {predictions, feedback, report} <= workspace.metadata.pinned_artifact_ids()
        gc = collect_garbage(workspace.metadata, workspace.artifacts, keep_last=0)
        assert gc.artifacts_deleted == 1, f"only {loose} is referenced by nothing"
        remaining = {a.id for a in workspace.metadata.list_artifacts()}
        assert remaining == {predictions, feedback, report}

    def test_gc_keeps_a_firing_s_cause_and_the_firing_forgets_its_deleted_run(
        self, workspace: Workspace, artifact_ids: list[str]
    ) -> None:
        run = make_run(status="succeeded")
        workspace.metadata.create_run(run)
        claim = FiringClaim("flights/drift", "flights", "drift", "k1", "drift", artifact_ids[0])
        firing = workspace.triggers.claim(claim).firing
        assert firing is not None
        workspace.triggers.update_firing(firing.id, run_id=run.id)
        assert artifact_ids[0] in workspace.metadata.pinned_artifact_ids()
        gc = collect_garbage(workspace.metadata, workspace.artifacts, keep_last=0)
        assert gc.runs_deleted == [run.id]
        assert artifact_ids[0] in {a.id for a in workspace.metadata.list_artifacts()}
        assert workspace.triggers.get_firing(firing.id).run_id is None


def _alert(
    workspace: Workspace, key: str, *, cooldown_s: float, report: str | None = None
) -> ops.AlertRecord | None:
    return workspace.alerts.record(
        source="monitor",
        subject=key.split(":")[-1],
        severity="warning",
        cause="drift in 'distance'",
        details={"psi": 0.3},
        dedup_key=key,
        report_artifact_id=report,
        cooldown_s=cooldown_s,
    )


class SqlOperationsContract(OperationsContract):
    """What only a database can show: writers in separate processes."""

    @pytest.fixture
    def store_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def workspace(self, store_url: str, tmp_path: Path) -> Iterator[Workspace]:
        with Workspace.open(store_url, artifacts=str(tmp_path / "artifacts")) as workspace:
            yield workspace

    def test_concurrent_writers_record_one_alert(
        self, store_url: str, workspace: Workspace, processes: tuple[Pool, SyncManager]
    ) -> None:
        pool, manager = processes
        barrier = manager.Barrier(PROCESSES)
        jobs = [(barrier, store_url, "drift:flights")] * PROCESSES
        recorded = pool.starmap_async(alert_worker, jobs).get(timeout=300)
        assert sorted(recorded) == [False] * (PROCESSES - 1) + [True]
        assert len(workspace.alerts.list()) == 1


class TestSqliteOperations(SqlOperationsContract):
    """On a SQLite file (the default)."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'metadata.db'}"


class TestPostgresOperations(SqlOperationsContract):
    """On a real PostgreSQL server."""

    @pytest.fixture
    def store_url(self, fresh_postgres_url: str) -> str:
        return fresh_postgres_url


class TestMemoryOperations(OperationsContract):
    """In memory (:meth:`Workspace.in_memory`)."""

    @pytest.fixture
    def workspace(self) -> Iterator[Workspace]:
        with Workspace.in_memory() as workspace:
            yield workspace

    def test_concurrent_writers_record_one_alert(self, workspace: Workspace) -> None:
        barrier = threading.Barrier(PROCESSES)
        recorded: list[bool] = []

        def write() -> None:
            barrier.wait(timeout=30)
            recorded.append(_alert(workspace, "drift:flights", cooldown_s=3600) is not None)

        threads = [threading.Thread(target=write) for _ in range(PROCESSES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(recorded) == [False] * (PROCESSES - 1) + [True]
        assert len(workspace.alerts.list()) == 1


def test_to_utc_reads_epoch_seconds_and_aware_datetimes() -> None:
    assert ops.to_utc(T0.timestamp()) == T0
    assert ops.to_utc(T0.astimezone(UTC)) == T0


class TestRemoteOperations(OperationsContract):
    """Over HTTP, through a live ``ctloop server`` on a fresh SQLite workspace."""

    @pytest.fixture
    def workspace(self, remote_workspace: Workspace) -> Iterator[Workspace]:
        yield remote_workspace
