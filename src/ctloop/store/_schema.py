"""The metadata database schema: SQLAlchemy 2 declarative tables.

This module is the model; the database changes only through the Alembic migrations in
:mod:`ctloop.store.migrations`, and a test checks that migrating an empty database
produces exactly these tables. Bump :data:`SCHEMA_REVISION` with every new migration.

Conventions:

- ids are strings (32 hex characters from :func:`ctloop.store.records.new_id`);
- times are :class:`UtcDateTime`: timezone-aware UTC in and out, on every database;
- JSON-valued fields use the portable ``JSON`` type;
- params and tags store a run-level value with ``execution_id = ''`` (not ``NULL``) so
  that the unique key ``(run_id, execution_id, key)`` also holds for run-level values:
  SQL treats ``NULL`` values as distinct in unique constraints.

>>> sorted(Base.metadata.tables)[:3]
['alias_history', 'artifacts', 'data_versions']
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

#: the Alembic revision that matches these tables (the head of the migrations)
SCHEMA_REVISION = "0014"
#: the table where Alembic records the revision of a ctloop database
VERSION_TABLE = "ctloop_alembic_version"

#: names for constraints and indexes, so that migrations can refer to them
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    Values are converted to UTC before they are written; values read back are
    timezone-aware UTC, also on SQLite, which keeps no time zone. A naive datetime is
    refused: it is ambiguous.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC (naive on SQLite, which stores text)."""
        if value is None:
            return None
        utc = to_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored time as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime raises ``ValueError`` (its zone is unknown).

    >>> from datetime import timedelta, timezone
    >>> to_utc(datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))).hour
    0
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"datetime {value.isoformat()} has no time zone; pass a timezone-aware "
            "datetime such as ctloop.store.records.utcnow() or datetime.now(UTC)"
        )
    return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the metadata tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        str: String(),
    }


class Run(Base):
    """One pipeline run (:class:`~ctloop.store.records.RunRecord`)."""

    __tablename__ = "runs"
    # newest-first pages, of all runs or of one pipeline or status: (started_at, id) is
    # the keyset cursor, so a page is one index range however many runs there are
    __table_args__ = (
        Index(None, "started_at", "id"),
        Index(None, "pipeline", "started_at", "id"),
        Index(None, "status", "started_at", "id"),
    )

    id: Mapped[str] = mapped_column(primary_key=True)
    pipeline: Mapped[str]
    pipeline_version: Mapped[str]
    reference: Mapped[str]
    parameters: Mapped[dict[str, Any]]
    trigger: Mapped[str]
    user: Mapped[str]
    host: Mapped[str]
    pid: Mapped[int] = mapped_column(Integer)
    status: Mapped[str]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    git_commit: Mapped[str | None]
    executor: Mapped[str]
    error: Mapped[str | None] = mapped_column(Text)


class Execution(Base):
    """One step of a run (:class:`~ctloop.store.records.ExecutionRecord`).

    ``created_at`` orders the executions of a run (``started_at`` is empty while an
    execution is pending).
    """

    __tablename__ = "executions"
    __table_args__ = (Index(None, "cache_key", "status"),)

    id: Mapped[str] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    step: Mapped[str]
    function: Mapped[str]
    code_hash: Mapped[str]
    cache_key: Mapped[str]
    status: Mapped[str]
    parameters: Mapped[dict[str, Any]]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    log_uri: Mapped[str | None]
    cached_from: Mapped[str | None]
    attempt: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


class Artifact(Base):
    """A typed, content-addressed value (:class:`~ctloop.store.records.ArtifactRecord`).

    ``files`` is a JSON list of ``[path, digest, size]`` triples.
    """

    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(primary_key=True)
    type: Mapped[str]
    materializer: Mapped[str]
    materializer_version: Mapped[str]
    digest: Mapped[str] = mapped_column(index=True)
    uri: Mapped[str]
    size: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[list[Any]]
    properties: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Event(Base):
    """An execution read or wrote an artifact (:class:`~ctloop.store.records.EventRecord`)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    artifact_id: Mapped[str] = mapped_column(
        ForeignKey("artifacts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str]
    name: Mapped[str]


class _RunKeyValue:
    """The columns of a key and its text value on a run or on one of its executions
    (``execution_id = ''`` for the run), one value a key."""

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (UniqueConstraint("run_id", "execution_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    execution_id: Mapped[str]
    key: Mapped[str]
    value: Mapped[str] = mapped_column(Text)


class Param(_RunKeyValue, Base):
    """A parameter of a run or of one of its executions (``execution_id = ''`` for the run)."""

    __tablename__ = "params"


class Metric(Base):
    """A metric value of a run or of one of its executions."""

    __tablename__ = "metrics"
    # (key, run_id, …): one metric of every run (a search sorting runs by it) is one
    # range, and each run's latest value is read from the index alone
    __table_args__ = (
        Index(None, "run_id", "key"),
        Index(None, "key", "run_id", "execution_id", "step", "timestamp", "value", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    execution_id: Mapped[str | None] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str]
    # NULL is NaN: SQLite's driver writes NaN as NULL, and one spelling on every database
    # keeps NaN out of value order and comparisons (see :func:`stored_metric_value`)
    value: Mapped[float | None] = mapped_column(Double)
    step: Mapped[int | None] = mapped_column(Integer)
    timestamp: Mapped[datetime]


class LatestMetric(Base):
    """Each run's latest value of each metric: one row per run and key, kept by every
    metric write (an upsert that replaces the row only with a later point), so a search
    sorted or filtered by a metric joins one row per run instead of ranking its points.

    "Later" is :func:`~ctloop.store.metadata.metric_order`: the run's own value
    (``own = 1``) after its executions', then the higher ``step`` (none counts as 0),
    then the newer ``timestamp``; of two equal points the one written last wins.
    """

    __tablename__ = "latest_metrics"
    # clustered by (key, run_id) on SQLite (no rowid): one metric of every run, the rows
    # a search joins, lie together; (run_id, key) for a run's rows (deleting runs) and
    # for PostgreSQL's planner, which looks a run's metric up by either. PostgreSQL's
    # heap is not clustered: (key, run_id) with the value included lets a search read one
    # metric of every run from the index alone, not from a page per run; SQLite's table
    # already is that index, so there it stays empty (``WHERE 0``)
    __table_args__ = (
        Index(None, "run_id", "key"),
        # a search sorted by a metric reads its page in value order (only ties sorted)
        Index(None, "key", "value", "run_id"),
        Index(
            "ix_latest_metrics_key_run_id_value",
            "key",
            "run_id",
            postgresql_include=["value"],
            sqlite_where=text("0"),
        ),
        {"sqlite_with_rowid": False},
    )

    key: Mapped[str] = mapped_column(primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    value: Mapped[float | None] = mapped_column(Double)  # NULL is NaN, as in ``metrics``
    own: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[datetime]


class Tag(_RunKeyValue, Base):
    """A tag of a run or of one of its executions (``execution_id = ''`` for the run)."""

    __tablename__ = "tags"


class DataVersion(Base):
    """Version ``version`` of a named data set (:class:`~ctloop.store.records.DataVersionRecord`).

    The unique key ``(name, version)`` is what makes concurrent adds safe: a writer that
    lost the race retries with the next number.
    """

    __tablename__ = "data_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str]
    version: Mapped[int] = mapped_column(Integer)
    artifact_id: Mapped[str] = mapped_column(ForeignKey("artifacts.id"), index=True)
    source: Mapped[str]
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class RegisteredModel(Base):
    """A named model of the registry (:class:`ctloop.registry.RegisteredModel`)."""

    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(unique=True)
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ModelVersion(Base):
    """Version ``version`` of a registered model: an artifact and the run that made it.

    ``run_id`` and ``execution_id`` become ``NULL`` when garbage collection deletes the
    run; the artifact stays (it is in :data:`ARTIFACT_REFERENCES`).
    """

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(
        ForeignKey("registered_models.name", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    artifact_id: Mapped[str] = mapped_column(ForeignKey("artifacts.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), index=True
    )
    execution_id: Mapped[str | None] = mapped_column(
        ForeignKey("executions.id", ondelete="SET NULL")
    )
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str]


class RegisteredModelTag(Base):
    """A tag of a registered model."""

    __tablename__ = "registered_model_tags"
    __table_args__ = (UniqueConstraint("model", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(ForeignKey("registered_models.name", ondelete="CASCADE"))
    key: Mapped[str]
    value: Mapped[str] = mapped_column(Text)


class ModelVersionTag(Base):
    """A tag of a model version."""

    __tablename__ = "model_version_tags"
    __table_args__ = (UniqueConstraint("version_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str]
    value: Mapped[str] = mapped_column(Text)


class ModelAlias(Base):
    """An alias (``champion``, ``challenger``, …) of a model and the version it names."""

    __tablename__ = "model_aliases"
    __table_args__ = (
        UniqueConstraint("model", "alias"),
        ForeignKeyConstraint(
            ["model", "version"],
            ["model_versions.model", "model_versions.version"],
            name="fk_model_aliases_model_version_model_versions",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(ForeignKey("registered_models.name", ondelete="CASCADE"))
    alias: Mapped[str]
    version: Mapped[int] = mapped_column(Integer)


class AliasMove(Base):
    """One move of an alias (``kind``: ``set``, ``delete`` or ``rollback``), in order of ``id``.

    ``from_version`` is ``NULL`` when the alias was new, ``to_version`` when it was deleted.
    """

    __tablename__ = "alias_history"
    __table_args__ = (Index(None, "model", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(ForeignKey("registered_models.name", ondelete="CASCADE"))
    alias: Mapped[str]
    kind: Mapped[str]
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int | None] = mapped_column(Integer)
    moved_at: Mapped[datetime]
    moved_by: Mapped[str]
    reason: Mapped[str] = mapped_column(Text)


# -- operations: deployments, prediction logs, alerts, triggers (migration 0003) ------


class Deployment(Base):
    """One change of a deployment (``action``: ``deploy``, ``canary``, ``shadow``,
    ``promote``, ``rollback``, ``auto-rollback``, ``stop``), newest ``id`` last.

    ``state`` is the whole routing after the change (JSON): which model versions serve,
    with what share of traffic, which are mirrored, the rollback policy. The current
    state of a deployment is its latest row.
    """

    __tablename__ = "deployments"
    __table_args__ = (Index(None, "name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str]
    model: Mapped[str]
    action: Mapped[str]
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str]
    host: Mapped[str]


class PredictionLog(Base):
    """One batch of logged predictions: a Parquet artifact (one row per prediction)."""

    __tablename__ = "prediction_logs"
    __table_args__ = (Index(None, "model", "first_at"), Index(None, "model", "first_event_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str]
    version: Mapped[int | None] = mapped_column(Integer)
    deployment: Mapped[str | None]
    artifact_id: Mapped[str] = mapped_column(ForeignKey("artifacts.id"), index=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    first_event_at: Mapped[datetime | None]  # what the rows are about; None before 0008
    last_event_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class FeedbackLog(Base):
    """One batch of ground-truth labels joined to predictions by request id later."""

    __tablename__ = "feedback_logs"
    __table_args__ = (Index(None, "model", "first_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str | None]
    artifact_id: Mapped[str] = mapped_column(ForeignKey("artifacts.id"), index=True)
    rows: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    first_event_at: Mapped[datetime | None]
    last_event_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Alert(Base):
    """An alert: what went wrong (``cause``), how bad (``severity``), the numbers
    (``details``), the report behind it, and its delivery to each sink (``delivery``:
    sink name → status, attempts, last error). Alerts with the same ``dedup_key`` within
    a cooldown are one alert."""

    __tablename__ = "alerts"
    __table_args__ = (Index(None, "dedup_key", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str]
    subject: Mapped[str]
    severity: Mapped[str]
    cause: Mapped[str] = mapped_column(Text)
    dedup_key: Mapped[str]
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    report_artifact_id: Mapped[str | None] = mapped_column(
        ForeignKey("artifacts.id", ondelete="SET NULL")
    )
    delivery: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]


class TriggerState(Base):
    """What a trigger remembers between evaluations (last firing, cooldown, the data
    already seen as ``cursor``), so that a restarted scheduler neither misses nor repeats
    a firing."""

    __tablename__ = "trigger_state"

    name: Mapped[str] = mapped_column(primary_key=True)
    pipeline: Mapped[str]
    kind: Mapped[str]
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_checked_at: Mapped[datetime | None]
    last_fired_at: Mapped[datetime | None]
    cooldown_until: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class TriggerFiring(Base):
    """One firing of a trigger. ``fire_key`` names the occasion (a cron slot, a set of
    new files, a monitor report): unique per trigger, so an occasion fires once even when
    two schedulers or a restart see it twice."""

    __tablename__ = "trigger_firings"
    __table_args__ = (UniqueConstraint("trigger", "fire_key"), Index(None, "trigger", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger: Mapped[str]
    pipeline: Mapped[str]
    kind: Mapped[str]
    fire_key: Mapped[str]
    status: Mapped[str]
    reason: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    cause_artifact_id: Mapped[str | None] = mapped_column(
        ForeignKey("artifacts.id", ondelete="SET NULL")
    )
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    fired_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class ApiKey(Base):
    """An API key of the team server: who it is (``name``), what it may do (``role``) and
    its life (expiry, last use, revocation). Only the SHA-256 of the key is kept;
    ``prefix`` (the key's first characters) is what lists show."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]
    prefix: Mapped[str]
    hash: Mapped[str] = mapped_column(unique=True)
    role: Mapped[str]
    created_at: Mapped[datetime]
    created_by: Mapped[str]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One write through the team server: who (key and name), what (``action`` on
    ``object``, ``detail``), when, from where (``remote``) and its HTTP ``status``."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "action", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    key_id: Mapped[str | None] = mapped_column(index=True)
    actor: Mapped[str]
    action: Mapped[str]
    object: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    remote: Mapped[str]
    status: Mapped[int] = mapped_column(Integer)


class FeatureDefinition(Base):
    """One version of a feature store definition (an entity, feature view, on-demand
    view or feature service): its ``spec`` as applied and the ``digest`` of that spec."""

    __tablename__ = "feature_definitions"
    __table_args__ = (UniqueConstraint("kind", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str]
    name: Mapped[str]
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str]
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    applied_at: Mapped[datetime]
    applied_by: Mapped[str]


class FeatureMaterialization(Base):
    """One materialization of a feature view into the online store: the event time range
    ``(start, end]`` it read, how many rows it read and wrote, and when. The latest ``end``
    of a view is its watermark."""

    __tablename__ = "feature_materializations"
    __table_args__ = (Index(None, "view", "end"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    view: Mapped[str]
    start: Mapped[datetime | None]
    end: Mapped[datetime]
    rows_read: Mapped[int] = mapped_column(BigInteger)
    rows_written: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime]
    by: Mapped[str]


class Approval(Base):
    """A request to promote version ``version`` of ``model`` (its artifact ``digest``)
    from ``source`` into ``environment``, and where it stands: ``requested`` ->
    ``approved`` or ``rejected`` -> (approved only) ``deployed`` as ``deployed_version``
    of the environment's registry. Who asked, who decided, when and why."""

    __tablename__ = "approvals"
    __table_args__ = (Index(None, "model", "environment", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str]
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str]
    environment: Mapped[str]
    source: Mapped[str]
    state: Mapped[str]
    requested_by: Mapped[str]
    requested_at: Mapped[datetime]
    decided_by: Mapped[str | None]
    decided_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text)
    deployed_version: Mapped[int | None] = mapped_column(Integer)
    deployed_at: Mapped[datetime | None]


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


RUNS = _table(Run)
EXECUTIONS = _table(Execution)
ARTIFACTS = _table(Artifact)
EVENTS = _table(Event)
PARAMS = _table(Param)
METRICS = _table(Metric)
TAGS = _table(Tag)
LATEST_METRICS = _table(LatestMetric)
DATA_VERSIONS = _table(DataVersion)
REGISTERED_MODELS = _table(RegisteredModel)
MODEL_VERSIONS = _table(ModelVersion)
REGISTERED_MODEL_TAGS = _table(RegisteredModelTag)
MODEL_VERSION_TAGS = _table(ModelVersionTag)
MODEL_ALIASES = _table(ModelAlias)
ALIAS_HISTORY = _table(AliasMove)
DEPLOYMENTS = _table(Deployment)
PREDICTION_LOGS = _table(PredictionLog)
FEEDBACK_LOGS = _table(FeedbackLog)
ALERTS = _table(Alert)
TRIGGER_STATE = _table(TriggerState)
TRIGGER_FIRINGS = _table(TriggerFiring)
API_KEYS = _table(ApiKey)
AUDIT_LOG = _table(AuditEntry)
FEATURE_DEFINITIONS = _table(FeatureDefinition)
FEATURE_MATERIALIZATIONS = _table(FeatureMaterialization)
APPROVALS = _table(Approval)

#: (table, column) pairs whose artifact ids keep an artifact from garbage collection
ARTIFACT_REFERENCES: tuple[tuple[Table, str], ...] = (
    (EVENTS, "artifact_id"),
    (DATA_VERSIONS, "artifact_id"),
    (MODEL_VERSIONS, "artifact_id"),
    (PREDICTION_LOGS, "artifact_id"),
    (FEEDBACK_LOGS, "artifact_id"),
    (ALERTS, "report_artifact_id"),
    (TRIGGER_FIRINGS, "cause_artifact_id"),
)
