"""Statements of the SQL model registry (internal to :mod:`ctloop.store.registry._sql`).

Each function takes an open connection inside the caller's transaction. Writers first
call :func:`lock_model`: on PostgreSQL it takes a row lock (``SELECT … FOR UPDATE``) on
the registered model, so writers of one model run one after the other; on SQLite the
transaction already holds the database's write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, CursorResult, Row, Table, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ctloop.store._metadata_rules import missing_execution
from ctloop.store._schema import (
    ALIAS_HISTORY,
    EVENTS,
    EXECUTIONS,
    MODEL_ALIASES,
    MODEL_VERSION_TAGS,
    MODEL_VERSIONS,
    REGISTERED_MODEL_TAGS,
    REGISTERED_MODELS,
)
from ctloop.store.registry._records import AliasMove, ModelVersion, RegisteredModel
from ctloop.store.registry._rules import missing_version, model_not_found
from ctloop.store.statuses import ExecutionStatus

_VERSION_COLUMNS = (
    "model",
    "version",
    "artifact_id",
    "run_id",
    "execution_id",
    "description",
    "created_at",
    "created_by",
)
SELECT_VERSIONS = select(MODEL_VERSIONS.c.id, *(MODEL_VERSIONS.c[c] for c in _VERSION_COLUMNS))
SELECT_MOVES = select(*(ALIAS_HISTORY.c[name] for name in AliasMove.__dataclass_fields__)).order_by(
    ALIAS_HISTORY.c.id
)


def dialect_insert(conn: Connection, table: Table) -> Any:
    """An ``INSERT`` that supports ``ON CONFLICT`` on this connection's database."""
    module = postgresql if conn.dialect.name == "postgresql" else sqlite
    return module.insert(table)


# -- models -----------------------------------------------------------------------------
def ensure_model(conn: Connection, name: str, description: str, now: datetime) -> bool:
    """Create the model row unless it exists; whether it was created."""
    statement = dialect_insert(conn, REGISTERED_MODELS).on_conflict_do_nothing(
        index_elements=["name"]
    )
    values = {"name": name, "description": description, "created_at": now, "updated_at": now}
    return bool(conn.execute(statement, values).rowcount)


def lock_model(conn: Connection, name: str) -> None:
    """Lock the model's row for this transaction; an unknown model raises."""
    query = select(REGISTERED_MODELS.c.id).where(REGISTERED_MODELS.c.name == name)
    if conn.execute(query.with_for_update()).first() is None:
        raise model_not_found(name)


def touch_model(conn: Connection, name: str, now: datetime) -> None:
    """Set the model's ``updated_at``."""
    conn.execute(
        update(REGISTERED_MODELS).where(REGISTERED_MODELS.c.name == name).values(updated_at=now)
    )


def read_models(conn: Connection, name: str | None = None) -> list[RegisteredModel]:
    """Models (one, or all by name) with their tags, aliases and latest version."""
    query = select(REGISTERED_MODELS).order_by(REGISTERED_MODELS.c.name)
    tags = select(REGISTERED_MODEL_TAGS.c.model, REGISTERED_MODEL_TAGS.c.key)
    tags = tags.add_columns(REGISTERED_MODEL_TAGS.c.value).order_by(REGISTERED_MODEL_TAGS.c.key)
    aliases = select(MODEL_ALIASES.c.model, MODEL_ALIASES.c.alias, MODEL_ALIASES.c.version)
    latest = select(MODEL_VERSIONS.c.model, func.max(MODEL_VERSIONS.c.version)).group_by(
        MODEL_VERSIONS.c.model
    )
    if name is not None:
        query = query.where(REGISTERED_MODELS.c.name == name)
        tags = tags.where(REGISTERED_MODEL_TAGS.c.model == name)
        aliases = aliases.where(MODEL_ALIASES.c.model == name)
        latest = latest.where(MODEL_VERSIONS.c.model == name)
    tag_map: dict[str, dict[str, str]] = {}
    for tag in conn.execute(tags):
        tag_map.setdefault(tag.model, {})[tag.key] = tag.value
    alias_map: dict[str, dict[str, int]] = {}
    for alias in conn.execute(aliases.order_by(MODEL_ALIASES.c.alias)):
        alias_map.setdefault(alias.model, {})[alias.alias] = alias.version
    latest_map: dict[str, int] = {row[0]: row[1] for row in conn.execute(latest)}
    return [
        RegisteredModel(
            row.name,
            row.description,
            row.created_at,
            row.updated_at,
            tag_map.get(row.name, {}),
            alias_map.get(row.name, {}),
            latest_map.get(row.name),
        )
        for row in conn.execute(query)
    ]


# -- versions ---------------------------------------------------------------------------
def next_version(conn: Connection, model: str) -> int:
    """One more than the model's highest version number (1 for the first)."""
    latest = select(func.max(MODEL_VERSIONS.c.version)).where(MODEL_VERSIONS.c.model == model)
    return int(conn.execute(latest).scalar() or 0) + 1


def producer_of(conn: Connection, artifact_id: str) -> tuple[str | None, str | None]:
    """``(run_id, execution_id)`` of the step that first wrote the artifact, if recorded."""
    query = (
        select(EXECUTIONS.c.run_id, EXECUTIONS.c.id)
        .join(EVENTS, EVENTS.c.execution_id == EXECUTIONS.c.id)
        .where(EVENTS.c.artifact_id == artifact_id, EVENTS.c.kind == "output")
        .order_by((EXECUTIONS.c.status != ExecutionStatus.SUCCEEDED), EXECUTIONS.c.created_at)
        .limit(1)
    )
    row = conn.execute(query).first()
    return (None, None) if row is None else (row[0], row[1])


def execution_run(conn: Connection, execution_id: str) -> str:
    """The run of an execution; an unknown execution raises NotFoundError."""
    query = select(EXECUTIONS.c.run_id).where(EXECUTIONS.c.id == execution_id)
    run_id = conn.execute(query).scalar()
    if run_id is None:
        raise missing_execution(execution_id)
    return str(run_id)


def version_row(conn: Connection, model: str, version: int) -> Row[Any]:
    """The row of one version; a missing model or version raises."""
    query = SELECT_VERSIONS.where(MODEL_VERSIONS.c.model == model)
    row = conn.execute(query.where(MODEL_VERSIONS.c.version == version)).first()
    if row is not None:
        return row
    latest = next_version(conn, model) - 1
    if latest == 0 and not model_exists(conn, model):
        raise model_not_found(model)
    raise missing_version(model, version, latest)


def model_exists(conn: Connection, model: str) -> bool:
    """Whether the model is registered."""
    query = select(REGISTERED_MODELS.c.id).where(REGISTERED_MODELS.c.name == model)
    return conn.execute(query).first() is not None


def read_versions(conn: Connection, rows: list[Row[Any]]) -> list[ModelVersion]:
    """Records for version rows (of one model), with their tags and aliases."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    tags: dict[int, dict[str, str]] = {}
    tag_query = select(MODEL_VERSION_TAGS).where(MODEL_VERSION_TAGS.c.version_id.in_(ids))
    for tag in conn.execute(tag_query.order_by(MODEL_VERSION_TAGS.c.key)):
        tags.setdefault(tag.version_id, {})[tag.key] = tag.value
    aliases: dict[int, list[str]] = {}
    alias_query = select(MODEL_ALIASES.c.version, MODEL_ALIASES.c.alias)
    alias_query = alias_query.where(MODEL_ALIASES.c.model == rows[0].model)
    for version, alias in conn.execute(alias_query.order_by(MODEL_ALIASES.c.alias)):
        aliases.setdefault(version, []).append(alias)
    return [
        ModelVersion(
            **{c: row._mapping[c] for c in _VERSION_COLUMNS},
            tags=tags.get(row.id, {}),
            aliases=tuple(aliases.get(row.version, [])),
        )
        for row in rows
    ]


def upsert_tags(
    conn: Connection, table: Table, owner: dict[str, Any], tags: Mapping[str, str]
) -> None:
    """Set tags of one owner (``{"model": …}`` or ``{"version_id": …}``), overwriting by key."""
    if not tags:
        return
    statement = dialect_insert(conn, table)
    statement = statement.on_conflict_do_update(
        index_elements=[*owner, "key"], set_={"value": statement.excluded.value}
    )
    conn.execute(
        statement, [{**owner, "key": key, "value": str(value)} for key, value in tags.items()]
    )


# -- aliases ----------------------------------------------------------------------------
def current_holder(conn: Connection, model: str, alias: str) -> int | None:
    """The version ``alias`` points at, ``None`` when the model has no such alias."""
    query = select(MODEL_ALIASES.c.version).where(
        MODEL_ALIASES.c.model == model, MODEL_ALIASES.c.alias == alias
    )
    version = conn.execute(query).scalar()
    return None if version is None else int(version)


def move_alias(
    conn: Connection, model: str, alias: str, target: int | None, record: dict[str, Any]
) -> AliasMove:
    """Point ``alias`` at ``target`` (remove it when ``None``) and append the history row
    ``record`` (``kind``, ``moved_at``, ``moved_by``, ``reason``) in the same transaction."""
    current = current_holder(conn, model, alias)
    where = (MODEL_ALIASES.c.model == model, MODEL_ALIASES.c.alias == alias)
    if target is None:
        conn.execute(delete(MODEL_ALIASES).where(*where))
    elif current is None:
        conn.execute(insert(MODEL_ALIASES), {"model": model, "alias": alias, "version": target})
    else:
        conn.execute(update(MODEL_ALIASES).where(*where).values(version=target))
    values: dict[str, Any] = {"model": model, "alias": alias}
    values.update(from_version=current, to_version=target, **record)
    move_id = inserted_id(conn.execute(insert(ALIAS_HISTORY), values))
    return AliasMove(id=move_id, **values)


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an ``INSERT`` wrote."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def read_moves(conn: Connection, model: str, alias: str | None) -> list[AliasMove]:
    """History rows of a model (one alias, or all), oldest first."""
    query = SELECT_MOVES.where(ALIAS_HISTORY.c.model == model)
    if alias is not None:
        query = query.where(ALIAS_HISTORY.c.alias == alias)
    return [AliasMove(*row) for row in conn.execute(query)]
