"""The SQL metadata store: SQLite by default, PostgreSQL by URL.

One engine per URL per process (see :mod:`ctloop.store._sql_engine`); the schema is
migrated on first use (see :mod:`ctloop.store.migrations`). Every method is one
transaction, retried on transient lock conflicts; queries are SQLAlchemy Core
statements, compiled once and cached, so a call costs a few hundred microseconds on
SQLite.

>>> store = SqlMetadataStore("sqlite://")
>>> store.list_runs()
[]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, case, delete, func, insert, select, union

from ctloop.store._audit import AuditDraft, append_audit_row
from ctloop.store._metadata_rules import (
    EXECUTION_CHANGES,
    RUN_CHANGES,
    check_changes,
    check_status,
    missing_data_version,
    missing_execution,
)
from ctloop.store._schema import (
    ARTIFACT_REFERENCES,
    ARTIFACTS,
    DATA_VERSIONS,
    EVENTS,
    EXECUTIONS,
    LATEST_METRICS,
    METRICS,
    MODEL_VERSIONS,
    PARAMS,
    RUNS,
    TAGS,
)
from ctloop.store._sql_engine import (
    forget_engine,
    is_in_memory,
    mask_url,
)
from ctloop.store._sql_search import metric_sort_page, search_page_query
from ctloop.store._sql_statements import (
    EXECUTION_FIELDS,
    RUN_FIELDS,
    SELECT_ARTIFACTS,
    SELECT_DATA_VERSIONS,
    SELECT_EVENTS,
    SELECT_EXECUTIONS,
    SELECT_RUNS,
    artifact_from_row,
    by_id_or_prefix,
    chunks,
    insert_artifacts,
    insert_events,
    insert_tracking,
    keyed_query,
    read_metric_value,
    record_values,
    refuse_data_version_artifacts,
    require_artifacts,
    update_one,
)
from ctloop.store._sqlite_now import ImmediateWriter
from ctloop.store._transactions import SqlTransactions
from ctloop.store.metadata import (
    ExecutionOutputs,
    MetadataStore,
)
from ctloop.store.records import (
    ArtifactRecord,
    DataVersionRecord,
    EventRecord,
    ExecutionRecord,
    MetricRecord,
    ParamRecord,
    RunRecord,
    TagRecord,
    utcnow,
)
from ctloop.store.statuses import ExecutionStatus, RunStatus

__all__ = ["SqlMetadataStore"]

T = TypeVar("T")


class SqlMetadataStore(SqlTransactions, MetadataStore):
    """A :class:`MetadataStore` in SQLite (``sqlite:///path``) or PostgreSQL
    (``postgresql+psycopg://user:password@host/db``).

    Opening is cheap; the first call connects and migrates the schema if needed.

    >>> store = SqlMetadataStore("sqlite://")  # in memory, for tests
    >>> store.referenced_artifact_ids()
    set()
    """

    #: a write that breaks a constraint names a caller's mistake (a missing artifact),
    #: except where a write says otherwise (the next data version's number)
    retry_integrity = False

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._clock_lock = threading.Lock()
        self._immediate: ImmediateWriter | None = None
        self._last_created = utcnow()

    def _creation_time(self) -> datetime:
        """Now, but strictly later than this store's previous creation time, so that
        executions created in a fast loop keep their order."""
        with self._clock_lock:
            now = utcnow()
            if now <= self._last_created:
                now = self._last_created + timedelta(microseconds=1)
            self._last_created = now
            return now

    # -- runs -------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        """Insert a new run."""
        check_status(run.status, RunStatus, "run")
        row = {name: getattr(run, name) for name in RUN_FIELDS}
        self._write(lambda conn: conn.execute(insert(RUNS), row))

    def update_run(self, run_id: str, **changes: Any) -> None:
        """Change fields of a run; unknown field names raise ``ValueError``."""
        check_changes("run", changes, RUN_CHANGES, RunStatus)
        self._write(lambda conn: update_one(conn, RUNS, run_id, changes, "run"))

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id or unique id prefix."""
        row = self._read(lambda conn: by_id_or_prefix(conn, SELECT_RUNS, RUNS, run_id, "run"))
        return RunRecord(**row._mapping)

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        before: datetime | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, optionally filtered; ``before`` keeps runs started earlier."""
        query = SELECT_RUNS.order_by(RUNS.c.started_at.desc(), RUNS.c.id.desc())
        if pipeline is not None:
            query = query.where(RUNS.c.pipeline == pipeline)
        if status is not None:
            query = query.where(RUNS.c.status == status)
        if before is not None:
            query = query.where(RUNS.c.started_at < before)
        if limit is not None:
            query = query.limit(limit)
        return [RunRecord(*row) for row in self._read(lambda conn: conn.execute(query).all())]

    def delete_runs(self, run_ids: Sequence[str]) -> None:
        """Delete runs with their executions, events and tracking data (by cascade)."""

        def work(conn: Connection) -> None:
            for chunk in chunks(run_ids):
                conn.execute(delete(RUNS).where(RUNS.c.id.in_(chunk)))

        self._write(work)

    # -- executions -------------------------------------------------------------------
    def create_execution(self, execution: ExecutionRecord) -> None:
        """Insert a new execution."""
        check_status(execution.status, ExecutionStatus, "execution")
        row = {name: getattr(execution, name) for name in EXECUTION_FIELDS}
        row["created_at"] = self._creation_time()
        self._write(lambda conn: conn.execute(insert(EXECUTIONS), row))

    def update_execution(self, execution_id: str, **changes: Any) -> None:
        """Change fields of an execution; unknown field names raise ``ValueError``."""
        check_changes("execution", changes, EXECUTION_CHANGES, ExecutionStatus)
        self._write(lambda conn: update_one(conn, EXECUTIONS, execution_id, changes, "execution"))

    def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The execution with this id."""
        query = SELECT_EXECUTIONS.where(EXECUTIONS.c.id == execution_id)
        row = self._read(lambda conn: conn.execute(query).first())
        if row is None:
            raise missing_execution(execution_id)
        return ExecutionRecord(*row)

    def list_executions(self, run_id: str) -> list[ExecutionRecord]:
        """Executions of a run, oldest first (by creation)."""
        query = SELECT_EXECUTIONS.where(EXECUTIONS.c.run_id == run_id).order_by(
            EXECUTIONS.c.created_at, EXECUTIONS.c.id
        )
        return [ExecutionRecord(*row) for row in self._read(lambda c: c.execute(query).all())]

    def _finish_execution(
        self, execution_id: str, changes: dict[str, Any], outputs: ExecutionOutputs
    ) -> None:
        def work(conn: Connection) -> None:
            update_one(conn, EXECUTIONS, execution_id, changes, "execution")
            insert_artifacts(conn, outputs.artifacts)
            insert_events(conn, outputs.events)
            insert_tracking(conn, outputs.params, outputs.metrics, outputs.tags)

        self._write(work)

    def find_cached_execution(self, cache_key: str) -> ExecutionRecord | None:
        """The newest ``succeeded`` execution with this cache key; when garbage collection
        deleted every one, the newest ``cached`` one (it recorded the same outputs)."""
        succeeded_first = case((EXECUTIONS.c.status == ExecutionStatus.SUCCEEDED, 0), else_=1)
        query = (
            SELECT_EXECUTIONS.where(
                EXECUTIONS.c.cache_key == cache_key,
                EXECUTIONS.c.status.in_(sorted(ExecutionStatus.done())),
            )
            .order_by(succeeded_first, EXECUTIONS.c.created_at.desc(), EXECUTIONS.c.id.desc())
            .limit(1)
        )
        row = self._read(lambda conn: conn.execute(query).first())
        return None if row is None else ExecutionRecord(*row)

    # -- artifacts and events ---------------------------------------------------------
    def put_artifacts(self, artifacts: Sequence[ArtifactRecord]) -> None:
        """Insert artifacts; ones whose id already exists are left as they are."""
        if artifacts:
            self._write(lambda conn: insert_artifacts(conn, artifacts))

    def get_artifact(self, artifact_id: str) -> ArtifactRecord:
        """The artifact with this id or unique id prefix."""
        row = self._read(
            lambda conn: by_id_or_prefix(conn, SELECT_ARTIFACTS, ARTIFACTS, artifact_id, "artifact")
        )
        return artifact_from_row(row)

    def list_artifacts(self, ids: Iterable[str] | None = None) -> list[ArtifactRecord]:
        """Artifacts with these ids (all when ``None``), oldest first; unknown ids are
        left out."""
        order = (ARTIFACTS.c.created_at, ARTIFACTS.c.id)
        if ids is None:
            rows = self._read(lambda conn: conn.execute(SELECT_ARTIFACTS.order_by(*order)).all())
        else:
            wanted = list(dict.fromkeys(ids))

            def work(conn: Connection) -> list[Row[Any]]:
                query = SELECT_ARTIFACTS.order_by(*order)
                return [
                    row
                    for chunk in chunks(wanted)
                    for row in conn.execute(query.where(ARTIFACTS.c.id.in_(chunk)))
                ]

            rows = sorted(self._read(work), key=lambda row: (row.created_at, row.id))
        return [artifact_from_row(row) for row in rows]

    def delete_artifacts(self, artifact_ids: Sequence[str]) -> None:
        """Delete artifact records and the events that point at them; an artifact that is
        a data version is refused."""

        def work(conn: Connection) -> None:
            for chunk in chunks(artifact_ids):
                refuse_data_version_artifacts(conn, chunk)
                conn.execute(delete(ARTIFACTS).where(ARTIFACTS.c.id.in_(chunk)))

        self._write(work)

    def add_events(self, events: Sequence[EventRecord]) -> None:
        """Insert events; one that names an unknown artifact raises NotFoundError."""
        if events:
            self._write(lambda conn: insert_events(conn, events))

    def events_of_execution(self, execution_id: str) -> list[EventRecord]:
        """Inputs and outputs of an execution, in the order they were recorded."""
        query = SELECT_EVENTS.where(EVENTS.c.execution_id == execution_id)
        return [EventRecord(*row) for row in self._read(lambda conn: conn.execute(query).all())]

    def events_of_artifact(self, artifact_id: str) -> list[EventRecord]:
        """Every execution that read or wrote this artifact, in the order recorded."""
        query = SELECT_EVENTS.where(EVENTS.c.artifact_id == artifact_id)
        return [EventRecord(*row) for row in self._read(lambda conn: conn.execute(query).all())]

    def referenced_artifact_ids(self) -> set[str]:
        """Ids of artifacts referenced by any event or data version."""
        query = union(*(select(table.c[column]) for table, column in ARTIFACT_REFERENCES))
        return set(self._read(lambda conn: conn.execute(query).scalars().all()))

    def pinned_artifact_ids(self) -> set[str]:
        """Ids of artifacts that records other than events keep alive."""
        query = union(
            *(
                select(table.c[column])
                for table, column in ARTIFACT_REFERENCES
                if table is not EVENTS
            )
        )
        return set(self._read(lambda conn: conn.execute(query).scalars().all()))

    def pinned_run_ids(self) -> set[str]:
        """Ids of runs that made a registered model version."""
        query = select(MODEL_VERSIONS.c.run_id).where(MODEL_VERSIONS.c.run_id.is_not(None))
        return set(self._read(lambda conn: conn.execute(query).scalars().all()))

    # -- tracking ---------------------------------------------------------------------
    def log_batch(
        self,
        *,
        params: Sequence[ParamRecord] = (),
        metrics: Sequence[MetricRecord] = (),
        tags: Sequence[TagRecord] = (),
        audit: AuditDraft | None = None,
    ) -> None:
        """Write tracking data in one transaction; params and tags are upserted. With
        ``audit``, its entry is appended to the audit log (table ``audit_log`` of this
        database) in the same transaction: the write and its entry commit together."""
        if not (params or metrics or tags or audit):
            return

        def work(conn: Connection) -> None:
            insert_tracking(conn, params, metrics, tags)
            if audit is not None:
                append_audit_row(conn, audit)

        self._write(work)

    def log_metrics_now(self, metrics: Sequence[MetricRecord], audit: AuditDraft) -> bool:
        """Write ``metrics`` and ``audit`` as :meth:`log_batch` does, if that can be done
        at once without waiting for a lock or a connection: on a SQLite file whose write
        lock is free. ``False`` (nothing written) otherwise, and on any failure: then
        :meth:`log_batch` writes them, or names what is wrong. A server may call this on
        its event loop (see :class:`~ctloop.store._sqlite_now.ImmediateWriter`)."""
        if self._immediate is None:
            if not self.url.startswith("sqlite:") or is_in_memory(self.url):
                return False
            self._ensure_schema()
            with self._clock_lock:
                if self._immediate is None:
                    self._immediate = ImmediateWriter(self.url)
        return self._immediate.write(metrics, audit)

    def get_params(self, run_id: str) -> list[ParamRecord]:
        """Params of a run and its executions (run-level first, then by key)."""
        rows = self._read(lambda conn: conn.execute(keyed_query(PARAMS, run_id)).all())
        return [ParamRecord(run_id, row.key, row.value, row.execution_id or None) for row in rows]

    def get_metrics(self, run_id: str, key: str | None = None) -> list[MetricRecord]:
        """Metrics of a run and its executions, by key then step then time."""
        columns = ("key", "value", "step", "execution_id", "timestamp")  # MetricRecord order
        query = select(*(METRICS.c[name] for name in columns)).where(METRICS.c.run_id == run_id)
        if key is not None:
            query = query.where(METRICS.c.key == key)
        query = query.order_by(
            METRICS.c.key,
            METRICS.c.step.asc().nulls_first(),
            METRICS.c.timestamp,
            METRICS.c.id,
        )
        rows = self._read(lambda c: c.execute(query).all())
        return [
            MetricRecord(run_id, key, read_metric_value(value), *rest) for key, value, *rest in rows
        ]

    def latest_metric_values(
        self, key: str, run_ids: Sequence[str] | None = None
    ) -> dict[str, float]:
        """Each run's latest value of metric ``key``, from ``latest_metrics`` (one row per
        run and key) in one query (chunked by run ids)."""
        query = select(LATEST_METRICS.c.run_id, LATEST_METRICS.c.value).where(
            LATEST_METRICS.c.key == key
        )
        ids = None if run_ids is None else list(run_ids)
        queries = (
            [query]
            if ids is None
            else [
                query.where(LATEST_METRICS.c.run_id.in_(ids[start : start + 500]))
                for start in range(0, len(ids), 500)
            ]
        )

        def work(conn: Connection) -> dict[str, float]:
            return {
                row.run_id: read_metric_value(row.value)
                for q in queries
                for row in conn.execute(q).all()
            }

        return self._read(work)

    def search_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        trigger: str | None = None,
        user: str | None = None,
        where: Sequence[tuple[str, str, float]] = (),
        param_where: Sequence[tuple[str, str, str]] = (),
        sort: tuple[str, str, bool] = ("column", "started_at", True),
        offset: int = 0,
        limit: int | None = None,
        started_after: datetime | None = None,
    ) -> tuple[list[RunRecord], int]:
        """A page of the matching runs and their count in two queries: the page's ids
        with the total (each metric the search names is a join with its row of
        ``latest_metrics``, each param read from the run's JSON, the order and the cut
        done by ``ORDER BY``/``LIMIT``/``OFFSET`` on narrow rows: see
        :mod:`ctloop.store._sql_search`), then those runs by id. A sort by a metric with no
        conditions reads the page in the metric's order instead, and counts apart
        (:func:`~ctloop.store._sql_search.metric_sort_page`)."""
        filters = {"pipeline": pipeline, "status": status, "trigger": trigger, "user": user}
        if sort[0] == "metric" and not where and not param_where:
            _, key, descending = sort

            def by_metric(conn: Connection) -> tuple[list[RunRecord], int]:
                ids, total = metric_sort_page(
                    conn,
                    filters=filters,
                    started_after=started_after,
                    key=key,
                    descending=descending,
                    offset=offset,
                    limit=limit,
                )
                return self._runs_in_order(conn, ids), total

            return self._read(by_metric)
        query, found = search_page_query(
            self._engine.dialect.name,
            filters=filters,
            where=where,
            param_where=param_where,
            sort=sort,
            offset=offset,
            limit=limit,
            started_after=started_after,
        )

        def work(conn: Connection) -> tuple[list[RunRecord], int]:
            page = conn.execute(query).all()
            if not page:
                counted = select(func.count()).select_from(found)
                return [], 0 if offset == 0 else int(conn.execute(counted).scalar_one())
            return self._runs_in_order(conn, [row.id for row in page]), int(page[0].total)

        return self._read(work)

    @staticmethod
    def _runs_in_order(conn: Connection, ids: list[str]) -> list[RunRecord]:
        """The runs of ``ids``, in that order (a list of a page: one query)."""
        if not ids:
            return []
        rows = conn.execute(SELECT_RUNS.where(RUNS.c.id.in_(ids))).all()
        by_id = {row.id: RunRecord(*row) for row in rows}
        return [by_id[i] for i in ids if i in by_id]

    def get_tags(self, run_id: str) -> list[TagRecord]:
        """Tags of a run and its executions (run-level first, then by key)."""
        rows = self._read(lambda conn: conn.execute(keyed_query(TAGS, run_id)).all())
        return [TagRecord(run_id, row.key, row.value, row.execution_id or None) for row in rows]

    # -- data versions ----------------------------------------------------------------
    def _add_data_version(
        self, name: str, artifact_id: str, next_version: Callable[[int], DataVersionRecord]
    ) -> DataVersionRecord:
        """The next version of ``name``; concurrent adds get distinct numbers (the unique
        key on (name, version) makes a loser retry with the next number, and a loser that
        expected the latest version sees it moved)."""

        def work(conn: Connection) -> DataVersionRecord:
            require_artifacts(conn, [artifact_id], f"data version of {name!r}")
            latest = select(func.max(DATA_VERSIONS.c.version)).where(DATA_VERSIONS.c.name == name)
            record = next_version(conn.execute(latest).scalar() or 0)
            conn.execute(insert(DATA_VERSIONS), record_values(record))
            return record

        return self._write(work, retry_integrity=True)

    def get_data_version(self, name: str, version: int | None = None) -> DataVersionRecord:
        """A version of ``name`` (the latest when ``version`` is ``None``)."""
        query = SELECT_DATA_VERSIONS.where(DATA_VERSIONS.c.name == name)
        if version is None:
            query = query.order_by(DATA_VERSIONS.c.version.desc()).limit(1)
        else:
            query = query.where(DATA_VERSIONS.c.version == version)
        row = self._read(lambda conn: conn.execute(query).first())
        if row is None:
            raise missing_data_version(name, version)
        return DataVersionRecord(*row)

    def list_data_versions(self, name: str | None = None) -> list[DataVersionRecord]:
        """Versions of ``name`` (of every name when ``None``), by name then version."""
        query = SELECT_DATA_VERSIONS.order_by(DATA_VERSIONS.c.name, DATA_VERSIONS.c.version)
        if name is not None:
            query = query.where(DATA_VERSIONS.c.name == name)
        return [DataVersionRecord(*row) for row in self._read(lambda c: c.execute(query).all())]

    # -- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        """Close the pooled connections (the store reconnects if used again; an
        in-memory database is gone)."""
        if self._immediate is not None:
            self._immediate.close()
        forget_engine(self.url)
        self._engine.dispose()
        self._forget_schema()

    def __repr__(self) -> str:
        return f"SqlMetadataStore({mask_url(self.url)!r})"
