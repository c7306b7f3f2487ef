"""Statements and row conversions of the SQL metadata store (internal to
:mod:`ctloop.store._sql`).

Each function takes an open connection inside the caller's transaction and does one
thing: look a record up by id or prefix, insert artifacts once, upsert params by key.
Statements are built once at import and reused, so SQLAlchemy compiles them once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ctloop.store._metadata_rules import (
    PREFIX_MATCHES,
    check_prefix,
    data_version_artifacts,
    missing_artifacts,
    missing_record,
    prefix_not_found,
)
from ctloop.store._schema import (
    ARTIFACTS,
    DATA_VERSIONS,
    EVENTS,
    EXECUTIONS,
    LATEST_METRICS,
    METRICS,
    PARAMS,
    RUNS,
    TAGS,
    to_utc,
)
from ctloop.store.records import (
    ArtifactRecord,
    DataVersionRecord,
    EventRecord,
    ExecutionRecord,
    FileEntry,
    MetricRecord,
    ParamRecord,
    RunRecord,
    TagRecord,
)

_CHUNK = 500  # ids per IN (...) clause, well under every database's parameter limit
RUN_FIELDS = tuple(f.name for f in fields(RunRecord))
EXECUTION_FIELDS = tuple(f.name for f in fields(ExecutionRecord))
ARTIFACT_FIELDS = tuple(f.name for f in fields(ArtifactRecord))
SELECT_RUNS = select(*(RUNS.c[name] for name in RUN_FIELDS))
SELECT_EXECUTIONS = select(*(EXECUTIONS.c[name] for name in EXECUTION_FIELDS))
SELECT_ARTIFACTS = select(*(ARTIFACTS.c[name] for name in ARTIFACT_FIELDS))
SELECT_EVENTS = select(
    EVENTS.c.execution_id, EVENTS.c.artifact_id, EVENTS.c.kind, EVENTS.c.name
).order_by(EVENTS.c.id)
SELECT_DATA_VERSIONS = select(*(DATA_VERSIONS.c[f.name] for f in fields(DataVersionRecord)))


def chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    """Slices of at most 500 ids, for ``IN (...)`` clauses."""
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start : start + _CHUNK])


def record_values(record: Any) -> dict[str, Any]:
    """A record's fields as a dict of column values."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


def update_one(
    conn: Connection, table: Table, record_id: str, changes: dict[str, Any], what: str
) -> None:
    """Update one record by id; an unknown id raises NotFoundError."""
    if changes:
        result = conn.execute(update(table).where(table.c.id == record_id).values(changes))
        found = result.rowcount > 0
    else:
        found = conn.execute(select(table.c.id).where(table.c.id == record_id)).first() is not None
    if not found:
        raise missing_record(what, record_id)


def by_id_or_prefix(
    conn: Connection, query: Select[Any], table: Table, id_or_prefix: str, what: str
) -> Row[Any]:
    """The row whose id is ``id_or_prefix`` or, failing that, the only one whose id
    starts with it (see :func:`~ctloop.store._metadata_rules.prefix_not_found`)."""
    row = conn.execute(query.where(table.c.id == id_or_prefix)).first()
    if row is not None:
        return row
    check_prefix(id_or_prefix, what)
    matches = conn.execute(
        query.where(table.c.id.startswith(id_or_prefix, autoescape=True))
        .order_by(table.c.id)
        .limit(PREFIX_MATCHES)
    ).all()
    matches = [row for row in matches if row.id.startswith(id_or_prefix)]  # LIKE may ignore case
    if len(matches) == 1:
        return matches[0]
    raise prefix_not_found(what, id_or_prefix, [row.id for row in matches])


def artifact_from_row(row: Row[Any]) -> ArtifactRecord:
    """An :class:`ArtifactRecord` from a row of :data:`SELECT_ARTIFACTS`."""
    values = row._asdict()
    values["files"] = tuple(FileEntry(str(p), str(d), int(s)) for p, d, s in values["files"])
    return ArtifactRecord(**values)


def _artifact_row(artifact: ArtifactRecord) -> dict[str, Any]:
    row = record_values(artifact)
    row["files"] = [[entry.path, entry.digest, entry.size] for entry in artifact.files]
    return row


def _dialect_insert(conn: Connection, table: Table) -> Any:
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def insert_artifacts(conn: Connection, artifacts: Sequence[ArtifactRecord]) -> None:
    """Insert artifacts, leaving ones whose id exists as they are."""
    if artifacts:
        statement = _dialect_insert(conn, ARTIFACTS).on_conflict_do_nothing(index_elements=["id"])
        # in id order, so that concurrent writers of the same artifacts cannot deadlock
        rows = [_artifact_row(artifact) for artifact in sorted(artifacts, key=lambda a: a.id)]
        conn.execute(statement, rows)


def require_artifacts(conn: Connection, artifact_ids: Iterable[str], needed_by: str) -> None:
    """Raise NotFoundError naming the artifacts that are not stored."""
    wanted = list(dict.fromkeys(artifact_ids))
    found: set[str] = set()
    for chunk in chunks(wanted):
        found.update(
            conn.execute(select(ARTIFACTS.c.id).where(ARTIFACTS.c.id.in_(chunk))).scalars()
        )
    missing = [artifact_id for artifact_id in wanted if artifact_id not in found]
    if missing:
        raise missing_artifacts(missing, needed_by)


def insert_events(conn: Connection, events: Sequence[EventRecord]) -> None:
    """Insert events after checking that their artifacts are stored."""
    if events:
        require_artifacts(conn, (event.artifact_id for event in events), "an event")
        conn.execute(insert(EVENTS), [record_values(event) for event in events])


def refuse_data_version_artifacts(conn: Connection, chunk: list[str]) -> None:
    """Refuse to delete artifacts that are data versions."""
    query = select(DATA_VERSIONS.c.name, DATA_VERSIONS.c.version, DATA_VERSIONS.c.artifact_id)
    kept = conn.execute(query.where(DATA_VERSIONS.c.artifact_id.in_(chunk)).limit(5)).all()
    if kept:
        raise data_version_artifacts((row.artifact_id, row.name, row.version) for row in kept)


def insert_tracking(
    conn: Connection,
    params: Sequence[ParamRecord],
    metrics: Sequence[MetricRecord],
    tags: Sequence[TagRecord],
) -> None:
    """Upsert params and tags by (run, execution, key); append metrics."""
    upsert_keyed(conn, PARAMS, params)
    upsert_keyed(conn, TAGS, tags)
    if metrics:
        insert_metrics(conn, metrics)


_METRIC_COLUMNS = ("run_id", "execution_id", "key", "value", "step", "timestamp")


def insert_metrics(conn: Connection, metrics: Sequence[MetricRecord]) -> None:
    """Append metric points with one driver-level ``executemany``.

    Thousands of points per step are common (one per epoch or boosting round); building
    them as plain tuples skips SQLAlchemy's per-row parameter processing, which costs
    several times SQLite's own insert. Timestamps are written as the ``UtcDateTime``
    column type writes them: UTC text on SQLite, aware datetimes elsewhere.
    """
    sqlite = conn.dialect.name == "sqlite"
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(metrics_insert(mark), metric_rows(metrics, sqlite=sqlite))
    update_latest_metrics(conn, metrics)


def metrics_insert(mark: str) -> str:
    """The driver-level insert of one metric point (``mark``: the driver's placeholder)."""
    return (
        f"INSERT INTO {METRICS.name} ({', '.join(_METRIC_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(_METRIC_COLUMNS))})"
    )


def stored_metric_value(value: float) -> float | None:
    """A metric value as the ``value`` columns hold it: NaN as NULL, every other float
    (``inf`` and ``-inf`` included) as itself.

    SQLite's driver binds NaN as NULL anyway; writing it so on PostgreSQL too keeps one
    meaning on both, and keeps NaN out of value order (a run whose latest value is NaN
    sorts after every number, like MLflow's) and out of every comparison of a search."""
    return None if value != value else value  # NaN is the one float unequal to itself


def read_metric_value(value: float | None) -> float:
    """The metric value a ``value`` column holds (see :func:`stored_metric_value`)."""
    return math.nan if value is None else float(value)


def metric_rows(metrics: Sequence[MetricRecord], *, sqlite: bool) -> list[tuple[Any, ...]]:
    """The parameters of :func:`metrics_insert` for each point."""
    return [
        (
            m.run_id,
            m.execution_id,
            m.key,
            stored_metric_value(m.value),
            m.step,
            sqlite_time(m.timestamp) if sqlite else to_utc(m.timestamp),
        )
        for m in metrics
    ]


# a row moves only to a later point (see schema.LatestMetric); ties go to the newer write
_LATEST_UPSERT = (
    f"INSERT INTO {LATEST_METRICS.name} (run_id, key, value, own, step, timestamp) "
    "VALUES ({marks}) ON CONFLICT (key, run_id) DO UPDATE SET value = excluded.value, "
    "own = excluded.own, step = excluded.step, timestamp = excluded.timestamp "
    f"WHERE (excluded.own, excluded.step, excluded.timestamp) >= ({LATEST_METRICS.name}.own, "
    f"{LATEST_METRICS.name}.step, {LATEST_METRICS.name}.timestamp)"
)


def update_latest_metrics(conn: Connection, metrics: Sequence[MetricRecord]) -> None:
    """Move each (run, key)'s row of ``latest_metrics`` to the latest of ``metrics``
    where it is later than the row's (one upsert per run and key of the batch)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    rows = latest_rows(metrics, sqlite=conn.dialect.name == "sqlite")
    conn.exec_driver_sql(latest_upsert(mark), rows)


def latest_upsert(mark: str) -> str:
    """The driver-level upsert of one (run, key)'s row of ``latest_metrics``."""
    return _LATEST_UPSERT.format(marks=", ".join([mark] * 6))


def latest_rows(metrics: Sequence[MetricRecord], *, sqlite: bool) -> list[tuple[Any, ...]]:
    """The parameters of :func:`latest_upsert`: the latest of ``metrics`` per run and key."""
    latest: dict[tuple[str, str], tuple[int, int, datetime, float]] = {}
    for m in metrics:
        point = (int(m.execution_id is None), m.step or 0, to_utc(m.timestamp), m.value)
        held = latest.get((m.run_id, m.key))
        if held is None or point[:3] >= held[:3]:
            latest[(m.run_id, m.key)] = point
    return [
        (
            run_id,
            key,
            stored_metric_value(value),
            own,
            step,
            sqlite_time(moment) if sqlite else moment,
        )
        for (run_id, key), (own, step, moment, value) in latest.items()
    ]


def sqlite_time(moment: datetime) -> str:
    """The text SQLAlchemy's SQLite ``DateTime`` stores, for a UTC moment."""
    if moment.tzinfo is not UTC:  # the usual case, utcnow(), skips the conversion
        moment = to_utc(moment)
    return moment.isoformat(sep=" ", timespec="microseconds")[:26]  # drop "+00:00"


def upsert_keyed(
    conn: Connection, table: Table, records: Sequence[ParamRecord | TagRecord]
) -> None:
    """Insert or overwrite params or tags by (run, execution, key)."""
    # last value wins within a batch too (PostgreSQL refuses to update a row twice in one
    # statement)
    rows: dict[tuple[str, str, str], dict[str, str]] = {}
    for record in records:
        execution_id = record.execution_id or ""
        rows[(record.run_id, execution_id, record.key)] = {
            "run_id": record.run_id,
            "execution_id": execution_id,
            "key": record.key,
            "value": record.value,
        }
    if rows:
        statement = _dialect_insert(conn, table)
        statement = statement.on_conflict_do_update(
            index_elements=["run_id", "execution_id", "key"],
            set_={"value": statement.excluded.value},
        )
        conn.execute(statement, list(rows.values()))


def keyed_query(table: Table, run_id: str) -> Select[Any]:
    """Params or tags of a run: run-level first (``execution_id = ''``), then by key."""
    return (
        select(table.c.key, table.c.value, table.c.execution_id)
        .where(table.c.run_id == run_id)
        .order_by(table.c.execution_id, table.c.key)
    )
