"""The metadata store contract: every backend passes the same tests.

:class:`MetadataStoreContract` holds the tests of behaviour; a backend's class subclasses
it and provides ``store``, a fresh, empty store for each test: SQLite on a file under
``tmp_path``, PostgreSQL on a new database of a real server (see
``tests/fixtures/postgres.py``), and the in-memory store. :class:`SqlMetadataStoreContract`
adds what only a database shows (migrations, statements per step, several processes on
one database); its concurrency tests start real processes with the ``spawn`` method, and
their workers are module-level functions so that the children can import them. The
memory store races threads instead.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from multiprocessing.managers import SyncManager
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ctloop.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    StoreError,
    StoreUnavailableError,
)
from ctloop.store import MetadataStore, open_metadata_store
from ctloop.store._sql import SqlMetadataStore
from ctloop.store.memory import MemoryMetadataStore
from ctloop.store.records import (
    ArtifactRecord,
    EventRecord,
    ExecutionRecord,
    FileEntry,
    MetricRecord,
    ParamRecord,
    RunRecord,
    TagRecord,
    new_id,
    utcnow,
)
from ctloop.store.workspace import Workspace

T = TypeVar("T")
PROCESSES = 8
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# -- record factories ---------------------------------------------------------------------
def make_run(**changes: Any) -> RunRecord:
    """A running run of pipeline 'flights', started at T0 unless told otherwise."""
    run = RunRecord(
        id=new_id(),
        pipeline="flights",
        pipeline_version="v1",
        reference="examples/flights.py:flights",
        parameters={"lr": 0.1, "layers": [8, 4]},
        trigger="manual",
        user="ada",
        host="laptop",
        pid=4242,
        status="running",
        started_at=T0,
    )
    return replace(run, **changes)


def make_execution(run_id: str, step: str = "train", **changes: Any) -> ExecutionRecord:
    """A running execution of ``step`` in run ``run_id``."""
    execution = ExecutionRecord(
        id=new_id(),
        run_id=run_id,
        step=step,
        function=f"steps.{step}",
        code_hash="c0de",
        cache_key=f"key-{step}",
        status="running",
        parameters={"alpha": 1},
        started_at=T0,
    )
    return replace(execution, **changes)


def make_artifact(**changes: Any) -> ArtifactRecord:
    """A two-file Dataset artifact."""
    artifact = ArtifactRecord(
        id=new_id(),
        type="Dataset",
        materializer="parquet",
        materializer_version="1",
        digest="d" * 64,
        uri="objects/dd/manifest",
        size=30,
        files=(FileEntry("part-0.parquet", "a" * 64, 10), FileEntry("meta.json", "b" * 64, 20)),
        properties={"rows": 100, "columns": ["a", "b"]},
        created_at=T0,
    )
    return replace(artifact, **changes)


# -- process helpers ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def processes() -> Iterator[tuple[Pool, SyncManager]]:
    """A pool of :data:`PROCESSES` spawned worker processes (started once per module:
    starting a Python process that imports SQLAlchemy takes about a second) and a manager
    for the barriers that release them together."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(PROCESSES) as pool:
        yield pool, manager


def run_together(
    processes: tuple[Pool, SyncManager], target: Callable[..., T], args: list[tuple[Any, ...]]
) -> list[T]:
    """Call ``target(barrier, *a)`` for each ``a`` in its own process, all released at the
    same moment by ``barrier``; returns their results (re-raises a worker's exception).

    Each call blocks in the barrier until all have arrived, so no process runs two calls.
    """
    pool, manager = processes
    assert len(args) <= PROCESSES
    barrier = manager.Barrier(len(args))
    return pool.starmap_async(target, [(barrier, *a) for a in args]).get(timeout=300)


def run_in_threads(target: Callable[[], T], count: int = PROCESSES) -> list[T]:
    """Call ``target()`` in ``count`` threads released at the same moment; returns their
    results (re-raises a thread's exception)."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(target())
        except BaseException as exc:  # handed to the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]
    return results


def add_data_version_worker(barrier: Any, url: str, artifact_id: str) -> int:
    """Add one version of 'flights' as soon as every process is ready."""
    store = SqlMetadataStore(url)
    try:
        store.list_data_versions()  # connect and check the schema before the race
        barrier.wait(timeout=120)
        return store.add_data_version("flights", artifact_id, source="race").version
    finally:
        store.close()


def expect_latest_worker(barrier: Any, url: str, artifact_id: str) -> int | None:
    """Add version 1 of 'flights' only if there is none yet; ``None`` when another won."""
    store = SqlMetadataStore(url)
    try:
        store.list_data_versions()
        barrier.wait(timeout=120)
        try:
            return store.add_data_version(
                "flights", artifact_id, source="race", expect_latest=0
            ).version
        except ConflictError:
            return None
    finally:
        store.close()


def many_writes_worker(barrier: Any, url: str, run_id: str, writes: int) -> int:
    """Log ``writes`` metrics one transaction at a time, racing the other processes."""
    store = SqlMetadataStore(url)
    try:
        store.get_run(run_id)
        barrier.wait(timeout=120)
        for index in range(writes):
            store.log_batch(metrics=[MetricRecord(run_id, f"m{os.getpid()}", float(index), index)])
        return writes
    finally:
        store.close()


def first_open_worker(barrier: Any, url: str) -> str:
    """Open a store on a database nobody has used yet, at the same moment as the others."""
    barrier.wait(timeout=120)
    store = SqlMetadataStore(url)
    try:
        run = make_run()
        store.create_run(run)
        return run.id
    finally:
        store.close()


# -- the contract -------------------------------------------------------------------------
class MetadataStoreContract:
    """Tests every :class:`MetadataStore` backend must pass."""

    @pytest.fixture
    def store(self) -> Iterator[MetadataStore]:
        """A fresh, empty store (one per test)."""
        raise NotImplementedError

    # -- runs -------------------------------------------------------------------------
    def test_a_run_reads_back_as_written(self, store: MetadataStore) -> None:
        run = make_run(git_commit="abc123", heartbeat_at=T0 + timedelta(seconds=5))
        store.create_run(run)
        assert store.get_run(run.id) == run

    def test_a_run_is_found_by_a_unique_prefix(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        store.create_run(make_run())
        assert store.get_run(run.id[:12]) == run

    def test_an_ambiguous_prefix_lists_the_candidates(self, store: MetadataStore) -> None:
        first, second = make_run(id="abcd1" + "0" * 27), make_run(id="abcd2" + "0" * 27)
        store.create_run(first)
        store.create_run(second)
        with pytest.raises(NotFoundError, match="ambiguous") as caught:
            store.get_run("abcd")
        assert first.id in str(caught.value)
        assert second.id in str(caught.value)
        assert store.get_run("abcd2") == second

    def test_an_unknown_or_too_short_id_is_not_found(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        with pytest.raises(NotFoundError, match="ffffffff"):
            store.get_run("ffffffff")
        with pytest.raises(NotFoundError, match="at least 4"):
            store.get_run(run.id[:3])

    def test_update_run_changes_the_named_fields(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        store.update_run(run.id, status="failed", ended_at=T0 + timedelta(minutes=2), error="x")
        updated = store.get_run(run.id)
        assert (updated.status, updated.error, updated.duration_s) == ("failed", "x", 120.0)

    def test_update_run_refuses_unknown_fields_runs_and_statuses(
        self, store: MetadataStore
    ) -> None:
        run = make_run()
        store.create_run(run)
        with pytest.raises(ValueError, match="pipeline"):
            store.update_run(run.id, pipeline="other")
        with pytest.raises(ValueError, match="'done'"):
            store.update_run(run.id, status="done")
        with pytest.raises(NotFoundError, match="nope"):
            store.update_run("nope", status="failed")
        assert store.get_run(run.id) == run

    def test_list_runs_is_newest_first_and_filters(self, store: MetadataStore) -> None:
        runs = [
            make_run(started_at=T0 + timedelta(minutes=i), pipeline=p, status=s)
            for i, (p, s) in enumerate(
                [("flights", "succeeded"), ("taxi", "failed"), ("flights", "failed")]
            )
        ]
        for run in runs:
            store.create_run(run)
        assert [r.id for r in store.list_runs()] == [r.id for r in reversed(runs)]
        assert [r.id for r in store.list_runs(pipeline="flights")] == [runs[2].id, runs[0].id]
        assert [r.id for r in store.list_runs(status="failed")] == [runs[2].id, runs[1].id]
        assert [r.id for r in store.list_runs(limit=1)] == [runs[2].id]
        before = T0 + timedelta(minutes=2)
        assert [r.id for r in store.list_runs(before=before)] == [runs[1].id, runs[0].id]

    # -- executions -------------------------------------------------------------------
    def test_executions_are_listed_oldest_first(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        executions = [make_execution(run.id, f"step{i}", status="pending") for i in range(12)]
        for execution in executions:
            store.create_execution(execution)
        assert store.list_executions(run.id) == executions
        assert store.get_execution(executions[3].id) == executions[3]
        assert store.list_executions("other-run") == []

    def test_update_execution(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        execution = make_execution(run.id)
        store.create_execution(execution)
        store.update_execution(execution.id, status="failed", error="boom", log_uri="logs/x")
        got = store.get_execution(execution.id)
        assert (got.status, got.error, got.log_uri) == ("failed", "boom", "logs/x")
        with pytest.raises(ValueError, match="step"):
            store.update_execution(execution.id, step="other")
        with pytest.raises(NotFoundError):
            store.update_execution("missing", status="failed")
        with pytest.raises(NotFoundError, match="missing"):
            store.get_execution("missing")

    def test_complete_execution_records_everything(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        execution = make_execution(run.id)
        store.create_execution(execution)
        data, model = make_artifact(), make_artifact(type="Model")
        store.put_artifacts([data])
        ended = T0 + timedelta(seconds=3)
        store.complete_execution(
            execution.id,
            status="succeeded",
            ended_at=ended,
            artifacts=[model],
            events=[
                EventRecord(execution.id, data.id, "input", "data"),
                EventRecord(execution.id, model.id, "output", "model"),
            ],
            params=[ParamRecord(run.id, "alpha", "1", execution.id)],
            metrics=[MetricRecord(run.id, "auc", 0.9, None, execution.id, ended)],
            tags=[TagRecord(run.id, "owner", "ada", execution.id)],
            log_uri="logs/train.log",
        )
        got = store.get_execution(execution.id)
        assert (got.status, got.ended_at, got.log_uri) == ("succeeded", ended, "logs/train.log")
        assert store.get_artifact(model.id) == model
        assert [e.kind for e in store.events_of_execution(execution.id)] == ["input", "output"]
        assert store.get_params(run.id) == [ParamRecord(run.id, "alpha", "1", execution.id)]
        assert [m.value for m in store.get_metrics(run.id)] == [0.9]
        assert store.get_tags(run.id) == [TagRecord(run.id, "owner", "ada", execution.id)]

    def test_complete_execution_is_all_or_nothing(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        execution = make_execution(run.id)
        store.create_execution(execution)
        new_artifact, missing_id = make_artifact(), new_id()
        with pytest.raises(NotFoundError, match=missing_id):
            store.complete_execution(
                execution.id,
                status="succeeded",
                ended_at=T0,
                artifacts=[new_artifact],
                events=[EventRecord(execution.id, missing_id, "output", "model")],
                params=[ParamRecord(run.id, "alpha", "1")],
                metrics=[MetricRecord(run.id, "auc", 0.9)],
            )
        assert store.get_execution(execution.id) == execution
        assert store.list_artifacts() == []
        assert store.events_of_execution(execution.id) == []
        assert store.get_params(run.id) == []
        assert store.get_metrics(run.id) == []

    def test_complete_execution_keeps_artifacts_that_exist(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        first, second = make_execution(run.id), make_execution(run.id)
        artifact = make_artifact()
        for execution in (first, second):
            store.create_execution(execution)
            copy = replace(artifact, properties={"written_by": execution.id})
            store.complete_execution(
                execution.id,
                status="succeeded",
                ended_at=T0,
                artifacts=[copy],
                events=[EventRecord(execution.id, artifact.id, "output", "data")],
            )
        assert store.list_artifacts() == [replace(artifact, properties={"written_by": first.id})]
        assert len(store.events_of_artifact(artifact.id)) == 2

    def test_complete_execution_of_an_unknown_execution(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match="missing"):
            store.complete_execution("missing", status="failed", ended_at=T0)

    def test_find_cached_execution_returns_the_newest_succeeded(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        statuses = ["succeeded", "succeeded", "failed", "cached", "running"]
        executions = [make_execution(run.id, cache_key="k", status=s) for s in statuses]
        for execution in executions:
            store.create_execution(execution)
        assert store.find_cached_execution("k") == executions[1]
        assert store.find_cached_execution("other") is None

    def test_find_cached_execution_falls_back_to_a_cached_one(self, store: MetadataStore) -> None:
        original_run, rerun = make_run(), make_run()
        for run in (original_run, rerun):
            store.create_run(run)
        original = make_execution(original_run.id, cache_key="k", status="succeeded")
        store.create_execution(original)
        reuse = make_execution(rerun.id, cache_key="k", status="cached", cached_from=original.id)
        store.create_execution(reuse)
        store.create_execution(make_execution(rerun.id, cache_key="k", status="failed"))
        store.delete_runs([original_run.id])  # as garbage collection does
        assert store.find_cached_execution("k") == reuse

    # -- artifacts and events ---------------------------------------------------------
    def test_artifacts_read_back_by_id_prefix_and_list(self, store: MetadataStore) -> None:
        artifacts = [make_artifact(created_at=T0 + timedelta(seconds=i)) for i in range(3)]
        store.put_artifacts(artifacts)
        store.put_artifacts(artifacts[:1])  # again: nothing changes
        assert store.get_artifact(artifacts[0].id) == artifacts[0]
        assert store.get_artifact(artifacts[1].id[:8]) == artifacts[1]
        assert store.list_artifacts() == artifacts
        assert store.list_artifacts([artifacts[2].id, "missing", artifacts[0].id]) == [
            artifacts[0],
            artifacts[2],
        ]
        assert isinstance(store.get_artifact(artifacts[0].id).files, tuple)
        with pytest.raises(NotFoundError):
            store.get_artifact("0000000000")

    def test_events_link_executions_and_artifacts_both_ways(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        producer, consumer = make_execution(run.id, "prepare"), make_execution(run.id, "train")
        artifact = make_artifact()
        store.create_execution(producer)
        store.create_execution(consumer)
        store.put_artifacts([artifact])
        written = EventRecord(producer.id, artifact.id, "output", "data")
        read = EventRecord(consumer.id, artifact.id, "input", "data")
        store.add_events([written, read])
        assert store.events_of_execution(consumer.id) == [read]
        assert store.events_of_artifact(artifact.id) == [written, read]
        with pytest.raises(NotFoundError, match="put the artifacts first"):
            store.add_events([EventRecord(consumer.id, "missing", "input", "x")])

    def test_delete_runs_cascades_to_their_records(self, store: MetadataStore) -> None:
        kept_run, deleted_run = make_run(), make_run()
        artifact = make_artifact()
        store.put_artifacts([artifact])
        for run in (kept_run, deleted_run):
            store.create_run(run)
            execution = make_execution(run.id)
            store.create_execution(execution)
            store.complete_execution(
                execution.id,
                status="succeeded",
                ended_at=T0,
                events=[EventRecord(execution.id, artifact.id, "output", "data")],
                params=[ParamRecord(run.id, "a", "1"), ParamRecord(run.id, "b", "2", execution.id)],
                metrics=[MetricRecord(run.id, "auc", 0.5, 1, execution.id)],
                tags=[TagRecord(run.id, "t", "v")],
            )
        store.delete_runs([deleted_run.id])
        with pytest.raises(NotFoundError):
            store.get_run(deleted_run.id)
        assert store.list_executions(deleted_run.id) == []
        assert store.get_params(deleted_run.id) == []
        assert store.get_metrics(deleted_run.id) == []
        assert store.get_tags(deleted_run.id) == []
        assert [e.execution_id for e in store.events_of_artifact(artifact.id)] == [
            store.list_executions(kept_run.id)[0].id
        ]
        assert store.get_artifact(artifact.id) == artifact
        assert len(store.get_params(kept_run.id)) == 2

    def test_delete_artifacts_removes_their_events(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        execution = make_execution(run.id)
        store.create_execution(execution)
        gone, kept = make_artifact(), make_artifact()
        store.put_artifacts([gone, kept])
        store.add_events(
            [
                EventRecord(execution.id, gone.id, "input", "a"),
                EventRecord(execution.id, kept.id, "output", "b"),
            ]
        )
        store.delete_artifacts([gone.id])
        assert store.list_artifacts() == [kept]
        assert [e.artifact_id for e in store.events_of_execution(execution.id)] == [kept.id]

    def test_data_version_artifacts_cannot_be_deleted(self, store: MetadataStore) -> None:
        artifact = make_artifact()
        store.put_artifacts([artifact])
        store.add_data_version("flights", artifact.id, source="s3://raw/flights.csv")
        with pytest.raises(StoreError, match="flights v1"):
            store.delete_artifacts([artifact.id])
        assert store.get_artifact(artifact.id) == artifact

    def test_referenced_artifact_ids(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        execution = make_execution(run.id)
        store.create_execution(execution)
        by_event, by_version, loose = make_artifact(), make_artifact(), make_artifact()
        store.put_artifacts([by_event, by_version, loose])
        store.add_events([EventRecord(execution.id, by_event.id, "output", "out")])
        store.add_data_version("flights", by_version.id, source="csv")
        assert store.referenced_artifact_ids() == {by_event.id, by_version.id}

    # -- tracking ---------------------------------------------------------------------
    def test_log_batch_overwrites_params_and_tags_by_key(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        execution = make_execution(run.id)
        store.create_execution(execution)
        store.log_batch(
            params=[
                ParamRecord(run.id, "lr", "0.1"),
                ParamRecord(run.id, "lr", "0.2", execution.id),
            ],
            tags=[TagRecord(run.id, "stage", "dev")],
        )
        store.log_batch(
            params=[ParamRecord(run.id, "lr", "0.3"), ParamRecord(run.id, "lr", "0.4")],
            tags=[TagRecord(run.id, "stage", "prod"), TagRecord(run.id, "team", "ml")],
        )
        assert store.get_params(run.id) == [
            ParamRecord(run.id, "lr", "0.4"),
            ParamRecord(run.id, "lr", "0.2", execution.id),
        ]
        assert store.get_tags(run.id) == [
            TagRecord(run.id, "stage", "prod"),
            TagRecord(run.id, "team", "ml"),
        ]

    def test_metrics_are_ordered_by_key_step_and_time(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        metrics = [
            MetricRecord(run.id, "loss", 0.3, 2, timestamp=T0),
            MetricRecord(run.id, "auc", 0.8, None, timestamp=T0 + timedelta(seconds=9)),
            MetricRecord(run.id, "loss", 0.5, 1, timestamp=T0 + timedelta(seconds=1)),
            MetricRecord(run.id, "loss", 0.9, None, timestamp=T0 + timedelta(seconds=5)),
            MetricRecord(run.id, "loss", 0.4, 2, timestamp=T0 + timedelta(seconds=3)),
        ]
        store.log_batch(metrics=metrics)
        assert [m.value for m in store.get_metrics(run.id)] == [0.8, 0.9, 0.5, 0.3, 0.4]
        assert [m.value for m in store.get_metrics(run.id, "auc")] == [0.8]
        assert store.get_metrics(run.id, "auc") == [metrics[1]]

    def test_latest_metric_values_take_each_runs_highest_step_then_newest(
        self, store: MetadataStore
    ) -> None:
        first, second, bare = make_run(), make_run(), make_run()
        for run in (first, second, bare):
            store.create_run(run)
        store.log_batch(
            metrics=[
                MetricRecord(first.id, "auc", 0.6, 1, timestamp=T0),
                MetricRecord(first.id, "auc", 0.7, 3, timestamp=T0),
                MetricRecord(first.id, "auc", 0.9, 3, timestamp=T0 + timedelta(seconds=1)),
                MetricRecord(first.id, "auc", 0.5, 2, timestamp=T0 + timedelta(seconds=9)),
                MetricRecord(second.id, "auc", 0.4, None, timestamp=T0),
                MetricRecord(second.id, "loss", 0.2, None, timestamp=T0),
                MetricRecord(bare.id, "loss", 0.1, None, timestamp=T0),
            ]
        )
        assert store.latest_metric_values("auc") == {first.id: 0.9, second.id: 0.4}
        assert store.latest_metric_values("auc", [second.id, bare.id]) == {second.id: 0.4}
        assert store.latest_metric_values("auc", []) == {}
        assert store.latest_metric_values("nothing") == {}

    # -- data versions ----------------------------------------------------------------
    def test_data_versions_are_numbered_per_name(self, store: MetadataStore) -> None:
        artifacts = [make_artifact() for _ in range(3)]
        store.put_artifacts(artifacts)
        first = store.add_data_version("flights", artifacts[0].id, source="a.csv", message="m")
        second = store.add_data_version("flights", artifacts[1].id, source="b.csv")
        other = store.add_data_version("airports", artifacts[2].id, source="c.csv")
        assert (first.version, second.version, other.version) == (1, 2, 1)
        assert store.get_data_version("flights") == second
        assert store.get_data_version("flights", 1) == first
        assert store.list_data_versions() == [other, first, second]
        assert store.list_data_versions("flights") == [first, second]
        with pytest.raises(NotFoundError, match="no version 7"):
            store.get_data_version("flights", 7)
        with pytest.raises(NotFoundError, match="'weather' has no versions"):
            store.get_data_version("weather")
        with pytest.raises(NotFoundError, match="missing"):
            store.add_data_version("flights", "missing", source="x")

    def test_an_add_expecting_the_latest_version_is_a_compare_and_set(
        self, store: MetadataStore
    ) -> None:
        artifacts = [make_artifact() for _ in range(3)]
        store.put_artifacts(artifacts)
        first = store.add_data_version("flights", artifacts[0].id, source="a", expect_latest=0)
        assert first.version == 1
        with pytest.raises(ConflictError, match=r"'flights' is at version 1, not 0"):
            store.add_data_version("flights", artifacts[1].id, source="b", expect_latest=0)
        with pytest.raises(ConflictError, match="not 2 as expected"):
            store.add_data_version("flights", artifacts[1].id, source="b", expect_latest=2)
        assert store.list_data_versions("flights") == [first]
        second = store.add_data_version("flights", artifacts[2].id, source="c", expect_latest=1)
        assert second.version == 2
        assert store.get_data_version("flights") == second

    # -- values, concurrency, schema --------------------------------------------------
    def test_datetimes_come_back_timezone_aware_utc(self, store: MetadataStore) -> None:
        paris = timezone(timedelta(hours=2))
        run = make_run(started_at=datetime(2024, 6, 1, 14, 30, 0, 123456, tzinfo=paris))
        store.create_run(run)
        got = store.get_run(run.id)
        assert got.started_at == run.started_at
        assert got.started_at.tzinfo == UTC
        assert got.started_at.hour == 12
        assert store.list_runs(before=datetime(2024, 6, 1, 12, 31, tzinfo=UTC)) == [got]
        with pytest.raises(ValueError, match="no time zone"):
            store.create_run(make_run(started_at=datetime(2024, 1, 1)))
        with pytest.raises(ValueError, match="no time zone"):
            store.update_run(run.id, ended_at=datetime(2024, 6, 2))
        with pytest.raises(ValueError, match="no time zone"):
            store.list_runs(before=datetime(2024, 6, 2))
        assert store.get_run(run.id) == got

    def test_json_fields_come_back_as_json_and_are_copies(self, store: MetadataStore) -> None:
        parameters: dict[str, Any] = {"lr": 0.1, "layers": (8, 4), "nested": {"a": [1]}}
        run = make_run(parameters=parameters)
        store.create_run(run)
        parameters["nested"]["a"].append(2)  # the caller's dict is not the stored one
        got = store.get_run(run.id)
        assert got.parameters == {"lr": 0.1, "layers": [8, 4], "nested": {"a": [1]}}
        got.parameters["lr"] = 99  # nor is the one handed out
        assert store.list_runs()[0].parameters["lr"] == 0.1
        artifact = make_artifact()
        store.put_artifacts([artifact])
        store.get_artifact(artifact.id).properties["rows"] = -1
        assert store.list_artifacts()[0].properties["rows"] == 100

    def test_records_must_name_what_is_stored(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        execution = make_execution(run.id)
        store.create_execution(execution)
        artifact = make_artifact()
        store.put_artifacts([artifact])
        with pytest.raises(StoreError):
            store.create_run(replace(run, pipeline="again"))  # the id is taken
        with pytest.raises(StoreError):
            store.create_execution(make_execution(new_id()))
        with pytest.raises(StoreError):
            store.log_batch(params=[ParamRecord(new_id(), "lr", "0.1")])
        with pytest.raises(StoreError):
            store.log_batch(
                tags=[TagRecord(run.id, "kept", "no")], metrics=[MetricRecord(new_id(), "auc", 1)]
            )
        with pytest.raises(StoreError):
            store.log_batch(metrics=[MetricRecord(run.id, "auc", 0.5, None, new_id())])
        with pytest.raises(StoreError):
            store.add_events([EventRecord(new_id(), artifact.id, "input", "data")])
        assert store.get_run(run.id) == run
        assert store.list_executions(run.id) == [execution]
        assert (store.get_tags(run.id), store.get_metrics(run.id)) == ([], [])
        assert store.events_of_artifact(artifact.id) == []
        store.delete_runs([new_id()])  # deleting what is not there is no error
        store.delete_artifacts([new_id()])
        assert store.get_run(run.id) == run

    def test_metric_values_are_floats_and_run_params_overwrite_in_one_batch(
        self, store: MetadataStore
    ) -> None:
        run = make_run()
        store.create_run(run)
        store.log_batch(
            params=[ParamRecord(run.id, "lr", "0.1"), ParamRecord(run.id, "lr", "0.2", "")],
            metrics=[MetricRecord(run.id, "rounds", 3, timestamp=T0)],
        )
        assert store.get_params(run.id) == [ParamRecord(run.id, "lr", "0.2")]
        (metric,) = store.get_metrics(run.id)
        assert isinstance(metric.value, float) and metric.value == 3.0

    # -- NaN and infinities (a diverged trial logs them) -------------------------------
    def test_nan_and_infinite_metric_values_read_back_as_logged(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        execution = make_execution(run.id, "train")
        store.create_execution(execution)
        values = [0.5, math.nan, math.inf, -math.inf]
        store.log_batch(
            metrics=[
                MetricRecord(run.id, "loss", v, step, timestamp=T0) for step, v in enumerate(values)
            ]
            + [MetricRecord(run.id, "grad", math.nan, None, execution.id, timestamp=T0)]
        )
        loss = store.get_metrics(run.id, "loss")
        assert [m.step for m in loss] == [0, 1, 2, 3]
        assert loss[0].value == 0.5 and math.isnan(loss[1].value)
        assert (loss[2].value, loss[3].value) == (math.inf, -math.inf)
        (grad,) = store.get_metrics(run.id, "grad")
        assert grad.execution_id == execution.id and math.isnan(grad.value)
        assert store.latest_metric_values("loss") == {run.id: -math.inf}
        assert math.isnan(store.latest_metric_values("grad")[run.id])

    def test_a_step_completes_with_nan_and_infinite_metrics(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        execution = make_execution(run.id, "train")
        store.create_execution(execution)
        store.complete_execution(
            execution.id,
            status="succeeded",
            ended_at=T0 + timedelta(seconds=1),
            metrics=[
                MetricRecord(run.id, "loss", v, s, execution.id, timestamp=T0)
                for s, v in enumerate([math.inf, math.nan])
            ],
        )
        values = [m.value for m in store.get_metrics(run.id, "loss")]
        assert values[0] == math.inf and math.isnan(values[1])
        assert math.isnan(store.latest_metric_values("loss")[run.id])

    def test_a_latest_value_of_nan_sorts_after_numbers_and_before_runs_without_it(
        self, store: MetadataStore
    ) -> None:
        runs = [make_run(started_at=T0 + timedelta(minutes=n)) for n in range(6)]
        for run in runs:
            store.create_run(run)
        low, nan_old, high, nan_new, bare, top = runs
        store.log_batch(
            metrics=[
                MetricRecord(low.id, "loss", -math.inf, None, timestamp=T0),
                MetricRecord(nan_old.id, "loss", math.nan, None, timestamp=T0),
                MetricRecord(high.id, "loss", 0.7, None, timestamp=T0),
                MetricRecord(nan_new.id, "loss", 0.1, 1, timestamp=T0),
                MetricRecord(nan_new.id, "loss", math.nan, 2, timestamp=T0),
                MetricRecord(top.id, "loss", math.inf, None, timestamp=T0),
            ]
        )
        nans_then_bare = [nan_new.id, nan_old.id, bare.id]
        for descending, numbers in ((False, [low, high, top]), (True, [top, high, low])):
            page, total = store.search_runs(sort=("metric", "loss", descending))
            assert [r.id for r in page] == [r.id for r in numbers] + nans_then_bare
            assert total == 6
            page, _ = store.search_runs(sort=("metric", "loss", descending), offset=3, limit=2)
            assert [r.id for r in page] == nans_then_bare[:2]
            page, _ = store.search_runs(sort=("metric", "loss", descending), offset=2, limit=3)
            assert [r.id for r in page] == [numbers[2].id, *nans_then_bare[:2]]
            # with a condition the search takes its general path: the same order
            page, _ = store.search_runs(
                pipeline="flights", status="running", sort=("metric", "loss", descending)
            )
            assert [r.id for r in page] == [r.id for r in numbers] + nans_then_bare

    def test_nan_passes_no_condition_and_infinities_compare_as_numbers(
        self, store: MetadataStore
    ) -> None:
        finite, nan, plus, minus = (make_run() for _ in range(4))
        for run in (finite, nan, plus, minus):
            store.create_run(run)
        store.log_batch(
            metrics=[
                MetricRecord(finite.id, "loss", 0.5, None, timestamp=T0),
                MetricRecord(nan.id, "loss", math.nan, None, timestamp=T0),
                MetricRecord(plus.id, "loss", math.inf, None, timestamp=T0),
                MetricRecord(minus.id, "loss", -math.inf, None, timestamp=T0),
            ]
        )

        def found(op: str, number: float) -> set[str]:
            page, total = store.search_runs(where=[("loss", op, number)])
            assert total == len(page)
            return {r.id for r in page}

        assert found("<", 1.0) == {finite.id, minus.id}
        assert found(">", 1e308) == {plus.id}
        assert found("!=", 0.5) == {plus.id, minus.id}
        assert found(">=", -math.inf) == {finite.id, plus.id, minus.id}
        assert found("==", math.inf) == {plus.id}


def simulate_step(store: MetadataStore, run_id: str, width: int) -> None:
    """What the runner does for one step: look for a cache hit, create the execution,
    complete it with ``width`` outputs and tracking values of each kind."""
    store.find_cached_execution(f"key-{width}")
    execution = make_execution(run_id, f"step{width}")
    store.create_execution(execution)
    artifacts = [make_artifact() for _ in range(width)]
    store.complete_execution(
        execution.id,
        status="succeeded",
        ended_at=utcnow(),
        artifacts=artifacts,
        events=[
            EventRecord(execution.id, a.id, "output", f"out{i}") for i, a in enumerate(artifacts)
        ],
        params=[ParamRecord(run_id, f"p{i}", str(i), execution.id) for i in range(width)],
        metrics=[MetricRecord(run_id, f"m{i}", float(i), None, execution.id) for i in range(width)],
        tags=[TagRecord(run_id, f"t{i}", "v", execution.id) for i in range(width)],
    )


class SqlMetadataStoreContract(MetadataStoreContract):
    """What only a database shows: its schema, its statements, several processes on it."""

    @pytest.fixture
    def store_url(self) -> str:
        """The URL of a fresh, empty database (one per test)."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[MetadataStore]:
        """A store on a fresh database."""
        store = SqlMetadataStore(store_url)
        try:
            yield store
        finally:
            store.close()

    def test_concurrent_data_versions_get_distinct_numbers(
        self, store: MetadataStore, store_url: str, processes: tuple[Pool, SyncManager]
    ) -> None:
        artifact = make_artifact()
        store.put_artifacts([artifact])
        versions = run_together(
            processes, add_data_version_worker, [(store_url, artifact.id)] * PROCESSES
        )
        assert sorted(versions) == list(range(1, PROCESSES + 1))
        assert [v.version for v in store.list_data_versions("flights")] == sorted(versions)

    def test_concurrent_compare_and_set_adds_leave_one_winner(
        self, store: MetadataStore, store_url: str, processes: tuple[Pool, SyncManager]
    ) -> None:
        artifact = make_artifact()
        store.put_artifacts([artifact])
        versions = run_together(
            processes, expect_latest_worker, [(store_url, artifact.id)] * PROCESSES
        )
        assert sorted(versions, key=str) == [1] + [None] * (PROCESSES - 1)
        assert [v.version for v in store.list_data_versions("flights")] == [1]

    def test_concurrent_writers_all_succeed(
        self, store: MetadataStore, store_url: str, processes: tuple[Pool, SyncManager]
    ) -> None:
        run = make_run()
        store.create_run(run)
        writes = 50
        jobs = [(store_url, run.id, writes)] * PROCESSES
        done = run_together(processes, many_writes_worker, jobs)
        assert done == [writes] * PROCESSES
        assert len(store.get_metrics(run.id)) == writes * PROCESSES

    def test_processes_opening_a_fresh_database_together_all_succeed(
        self, store_url: str, processes: tuple[Pool, SyncManager]
    ) -> None:
        run_ids = run_together(processes, first_open_worker, [(store_url,)] * PROCESSES)
        store = SqlMetadataStore(store_url)
        try:
            assert {run.id for run in store.list_runs()} == set(run_ids)
        finally:
            store.close()

    def test_migrations_produce_the_schema_of_the_models(self, store_url: str) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        from ctloop.store._schema import SCHEMA_REVISION, VERSION_TABLE, Base
        from ctloop.store._sql_engine import engine_for
        from ctloop.store.migrations import alembic_config, current_revision

        store = SqlMetadataStore(store_url)
        store.list_runs()  # migrates the empty database
        engine = engine_for(store_url)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            assert compare_metadata(context, Base.metadata) == []
            assert current_revision(connection) == SCHEMA_REVISION
        assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_REVISION
        store.close()

    def test_a_step_costs_the_same_few_statements_however_much_it_records(
        self, store: MetadataStore, store_url: str
    ) -> None:
        from sqlalchemy import event

        from ctloop.store._sql_engine import engine_for

        run = make_run()
        store.create_run(run)
        statements: list[str] = []
        engine = engine_for(store_url)
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            counts = [len(statements)]
            for width in (1, 10):  # artifacts, events, params, metrics and tags per step
                simulate_step(store, run.id, width)
                counts.append(len(statements))
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        narrow, wide = counts[1] - counts[0], counts[2] - counts[1]
        assert narrow == wide, statements
        assert wide <= 16, statements


# -- backends -----------------------------------------------------------------------------
class TestSqliteMetadataStore(SqlMetadataStoreContract):
    """The contract on a SQLite file (the default backend)."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'state' / 'metadata.db'}"

    def test_the_database_uses_wal_and_its_folder_is_created(
        self, store: MetadataStore, tmp_path: Path
    ) -> None:
        import sqlite3

        store.list_runs()
        path = tmp_path / "state" / "metadata.db"
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        connection.close()

    def test_a_database_from_a_newer_ctloop_is_refused(self, store_url: str) -> None:
        import sqlite3

        from ctloop.store._schema import VERSION_TABLE
        from ctloop.store._sql_engine import forget_engine

        store = SqlMetadataStore(store_url)
        store.list_runs()
        store.close()
        path = store_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as connection:
            connection.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")
        connection.close()
        forget_engine(store_url)
        with pytest.raises(StoreError, match=r"'9999'.*upgrade ctloop"):
            SqlMetadataStore(store_url).list_runs()
        forget_engine(store_url)

    def test_in_memory_databases_are_separate(self) -> None:
        store, other = SqlMetadataStore("sqlite://"), SqlMetadataStore("sqlite://")
        run = make_run()
        store.create_run(run)
        assert store.get_run(run.id) == run
        assert other.list_runs() == []


class TestPostgresMetadataStore(SqlMetadataStoreContract):
    """The contract on a real PostgreSQL server."""

    @pytest.fixture
    def store_url(self, fresh_postgres_url: str) -> str:
        return fresh_postgres_url

    def test_an_unreachable_server_is_reported_without_the_password(self) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # closed again: nothing listens there
        url = f"postgresql+psycopg://ml:s3cr3t-pw@127.0.0.1:{port}/ctloop"
        with pytest.raises(StoreUnavailableError) as caught:
            SqlMetadataStore(url).list_runs()
        message = str(caught.value)
        assert f"127.0.0.1:{port}" in message
        assert "s3cr3t-pw" not in message
        assert "***" in message

    def test_a_missing_database_is_reported_as_unavailable(self, postgres_url: str) -> None:
        url = postgres_url.rsplit("/", 1)[0] + "/no_such_db"
        with pytest.raises(StoreUnavailableError, match="no_such_db"):
            SqlMetadataStore(url).list_runs()


class TestMemoryMetadataStore(MetadataStoreContract):
    """The contract in memory (the store of :meth:`Workspace.in_memory`); its races are
    threads on one store."""

    @pytest.fixture
    def store(self) -> Iterator[MetadataStore]:
        store = MemoryMetadataStore()
        yield store
        store.close()

    def test_concurrent_data_versions_get_distinct_numbers(self, store: MetadataStore) -> None:
        artifact = make_artifact()
        store.put_artifacts([artifact])
        versions = run_in_threads(
            lambda: store.add_data_version("flights", artifact.id, source="race").version
        )
        assert sorted(versions) == list(range(1, PROCESSES + 1))
        assert [v.version for v in store.list_data_versions("flights")] == sorted(versions)

    def test_concurrent_compare_and_set_adds_leave_one_winner(self, store: MetadataStore) -> None:
        artifact = make_artifact()
        store.put_artifacts([artifact])

        def add() -> int | None:
            try:
                return store.add_data_version(
                    "flights", artifact.id, source="race", expect_latest=0
                ).version
            except ConflictError:
                return None

        assert sorted(run_in_threads(add), key=str) == [1] + [None] * (PROCESSES - 1)

    def test_concurrent_writers_all_succeed(self, store: MetadataStore) -> None:
        run = make_run()
        store.create_run(run)
        writes = 50

        def write() -> int:
            key = f"m{threading.get_ident()}"
            for index in range(writes):
                store.log_batch(metrics=[MetricRecord(run.id, key, float(index), index)])
            return writes

        assert run_in_threads(write) == [writes] * PROCESSES
        assert len(store.get_metrics(run.id)) == writes * PROCESSES
        assert len({m.key for m in store.get_metrics(run.id)}) == PROCESSES

    def test_has_artifact_answers_for_the_full_id_only(self, store: MemoryMetadataStore) -> None:
        artifact = make_artifact()
        assert not store.has_artifact(artifact.id)
        store.put_artifacts([artifact])
        assert store.has_artifact(artifact.id)
        assert not store.has_artifact(artifact.id[:8])
        store.delete_artifacts([artifact.id])
        assert not store.has_artifact(artifact.id)


# -- opening stores -----------------------------------------------------------------------
def test_open_metadata_store_is_cached_per_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    store = open_metadata_store(url)
    assert open_metadata_store(url) is store
    assert isinstance(store, SqlMetadataStore)
    store.close()


@pytest.mark.parametrize("url", ["mysql://db/ctloop", "/tmp/metadata.db", "sqlite3:///x.db"])
def test_an_unsupported_url_names_the_accepted_forms(url: str) -> None:
    with pytest.raises(ConfigError, match=r"sqlite:///.*postgresql\+psycopg://"):
        open_metadata_store(url)


def test_importing_ctloop_store_does_not_import_sqlalchemy() -> None:
    code = "import sys, ctloop.store; assert 'sqlalchemy' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


class TestRemoteMetadataStore(MetadataStoreContract):
    """The contract over HTTP: a :meth:`Workspace.remote` client of a live ``ctloop
    server`` on a fresh SQLite workspace (tests/store/conftest.py)."""

    @pytest.fixture
    def store(self, remote_workspace: Workspace) -> Iterator[MetadataStore]:
        yield remote_workspace.metadata
