"""The model registry in the metadata database: SQLite by default, PostgreSQL by URL.

The registry shares the metadata store's database, engine and migrations (see
:mod:`ctloop.store._sql_engine`): one engine per URL per process, the schema migrated on
first use. Every method is one transaction, retried on transient lock conflicts; writers
of one model are serialised (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``SELECT … FOR
UPDATE`` on the model's row), so version numbers and alias moves never race.

>>> registry = SqlModelRegistry("sqlite://")
>>> registry.create_model("flights", description="delay classifier").name
'flights'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from sqlalchemy import Connection, delete, insert, update

from ctloop.errors import NotFoundError
from ctloop.store._schema import (
    ARTIFACTS,
    MODEL_VERSION_TAGS,
    MODEL_VERSIONS,
    REGISTERED_MODEL_TAGS,
    REGISTERED_MODELS,
    RUNS,
)
from ctloop.store._sql_engine import mask_url
from ctloop.store._sql_statements import SELECT_ARTIFACTS, SELECT_RUNS, by_id_or_prefix
from ctloop.store._transactions import SqlTransactions
from ctloop.store.records import utcnow
from ctloop.store.registry import _queries as q
from ctloop.store.registry._base import (
    ModelRegistry,
    VersionDraft,
    check_alias,
    check_model_name,
)
from ctloop.store.registry._history import rollback_target
from ctloop.store.registry._records import AliasMove, ModelVersion, RegisteredModel
from ctloop.store.registry._rules import (
    alias_not_found,
    current_user,
    model_not_found,
    move_record,
    unregistrable_artifact,
)

__all__ = ["SqlModelRegistry", "current_user"]

T = TypeVar("T")


class SqlModelRegistry(SqlTransactions, ModelRegistry):
    """A :class:`ModelRegistry` in the metadata database at ``url``
    (``sqlite:///path/metadata.db`` or ``postgresql+psycopg://user:password@host/db``).

    >>> SqlModelRegistry("sqlite://").list_models()
    []
    """

    # -- models -----------------------------------------------------------------------
    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        """The model ``name``, created with ``description`` and ``tags`` if new."""
        check_model_name(name)

        def work(conn: Connection) -> RegisteredModel:
            if q.ensure_model(conn, name, description, utcnow()):
                q.upsert_tags(conn, REGISTERED_MODEL_TAGS, {"model": name}, tags or {})
            return q.read_models(conn, name)[0]

        return self._write(work)

    def get_model(self, name: str) -> RegisteredModel:
        """The model ``name`` with its tags, aliases and latest version number."""
        found = self._read(lambda conn: q.read_models(conn, check_model_name(name)))
        if not found:
            raise model_not_found(name)
        return found[0]

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        return self._read(lambda conn: q.read_models(conn))

    def update_description(
        self, name: str, description: str, *, version: int | None = None
    ) -> None:
        """Set the description of a model, or of one of its versions."""
        check_model_name(name)

        def work(conn: Connection) -> None:
            q.lock_model(conn, name)
            if version is None:
                table, where = REGISTERED_MODELS, REGISTERED_MODELS.c.name == name
            else:
                table, where = (
                    MODEL_VERSIONS,
                    MODEL_VERSIONS.c.id == q.version_row(conn, name, version).id,
                )
            conn.execute(update(table).where(where).values(description=description))
            q.touch_model(conn, name, utcnow())

        self._write(work)

    def set_tag(self, name: str, key: str, value: str, *, version: int | None = None) -> None:
        """Set (or overwrite) a tag of a model, or of one of its versions."""
        self._write(lambda conn: self._change_tag(conn, name, key, value, version))

    def delete_tag(self, name: str, key: str, *, version: int | None = None) -> None:
        """Remove a tag of a model or version (a tag that is not there is no error)."""
        self._write(lambda conn: self._change_tag(conn, name, key, None, version))

    def _change_tag(
        self, conn: Connection, name: str, key: str, value: str | None, version: int | None
    ) -> None:
        q.lock_model(conn, check_model_name(name))
        if version is None:
            table, owner = REGISTERED_MODEL_TAGS, {"model": name}
        else:
            table, owner = MODEL_VERSION_TAGS, {"version_id": q.version_row(conn, name, version).id}
        if value is None:
            conn.execute(
                delete(table).where(
                    *(table.c[k] == v for k, v in owner.items()), table.c.key == key
                )
            )
        else:
            q.upsert_tags(conn, table, owner, {key: value})

    # -- versions ---------------------------------------------------------------------
    def _register_version(self, draft: VersionDraft) -> ModelVersion:
        model = draft.model

        def work(conn: Connection) -> ModelVersion:
            artifact = self._artifact_id(conn, model, draft.artifact_id)
            source = self._source(conn, artifact, draft.run_id, draft.execution_id)
            now = utcnow()
            q.ensure_model(conn, model, "", now)
            q.lock_model(conn, model)
            number = q.next_version(conn, model)
            values = {
                "model": model,
                "version": number,
                "artifact_id": artifact,
                "run_id": source[0],
                "execution_id": source[1],
                "description": draft.description,
                "created_at": now,
                "created_by": draft.by,
            }
            row_id = q.inserted_id(conn.execute(insert(MODEL_VERSIONS), values))
            q.upsert_tags(conn, MODEL_VERSION_TAGS, {"version_id": row_id}, draft.tags)
            q.touch_model(conn, model, now)
            return q.read_versions(conn, [q.version_row(conn, model, number)])[0]

        return self._write(work)

    @staticmethod
    def _artifact_id(conn: Connection, model: str, artifact_id: str) -> str:
        try:
            return str(
                by_id_or_prefix(conn, SELECT_ARTIFACTS, ARTIFACTS, artifact_id, "artifact").id
            )
        except NotFoundError as exc:
            raise unregistrable_artifact(model, exc) from exc

    @staticmethod
    def _source(
        conn: Connection, artifact_id: str, run_id: str | None, execution_id: str | None
    ) -> tuple[str | None, str | None]:
        if execution_id is not None:
            owner = q.execution_run(conn, execution_id)
            return (run_id or owner), execution_id
        if run_id is not None:
            return str(by_id_or_prefix(conn, SELECT_RUNS, RUNS, run_id, "run").id), None
        return q.producer_of(conn, artifact_id)

    def get_version(self, model: str, version: int) -> ModelVersion:
        """Version ``version`` of ``model``."""
        check_model_name(model)
        return self._read(
            lambda conn: q.read_versions(conn, [q.version_row(conn, model, version)])[0]
        )

    def list_versions(self, model: str) -> list[ModelVersion]:
        """The versions of ``model``, oldest first."""
        check_model_name(model)

        def work(conn: Connection) -> list[ModelVersion]:
            query = q.SELECT_VERSIONS.where(MODEL_VERSIONS.c.model == model)
            rows = list(conn.execute(query.order_by(MODEL_VERSIONS.c.version)))
            if not rows and not q.model_exists(conn, model):
                raise model_not_found(model)
            return q.read_versions(conn, rows)

        return self._read(work)

    # -- aliases ----------------------------------------------------------------------
    def set_alias(
        self, model: str, alias: str, version: int, *, by: str | None = None, reason: str = ""
    ) -> AliasMove | None:
        """Point ``alias`` at ``version`` and record the move (``None``: already there)."""
        check_model_name(model)
        check_alias(alias)

        def work(conn: Connection) -> AliasMove | None:
            q.lock_model(conn, model)
            q.version_row(conn, model, version)
            if q.current_holder(conn, model, alias) == version:
                return None
            return q.move_alias(conn, model, alias, version, move_record("set", by, reason))

        return self._write(work)

    def delete_alias(
        self, model: str, alias: str, *, by: str | None = None, reason: str = ""
    ) -> AliasMove:
        """Remove ``alias`` from ``model`` and record the move."""
        check_model_name(model)
        check_alias(alias)

        def work(conn: Connection) -> AliasMove:
            q.lock_model(conn, model)
            if q.current_holder(conn, model, alias) is None:
                raise alias_not_found(model, alias)
            return q.move_alias(conn, model, alias, None, move_record("delete", by, reason))

        return self._write(work)

    def get_by_alias(self, model: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at."""
        check_model_name(model)
        check_alias(alias)

        def work(conn: Connection) -> ModelVersion:
            version = q.current_holder(conn, model, alias)
            if version is None:
                if not q.model_exists(conn, model):
                    raise model_not_found(model)
                raise alias_not_found(model, alias)
            return q.read_versions(conn, [q.version_row(conn, model, version)])[0]

        return self._read(work)

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``alias`` (of every alias when ``None``), oldest first."""
        check_model_name(model)
        if alias is not None:
            check_alias(alias)

        def work(conn: Connection) -> list[AliasMove]:
            if not q.model_exists(conn, model):
                raise model_not_found(model)
            return q.read_moves(conn, model, alias)

        return self._read(work)

    def rollback(
        self, model: str, alias: str = "champion", *, by: str | None = None, reason: str = ""
    ) -> AliasMove:
        """Undo the latest move of ``alias`` not undone yet, and record the rollback."""
        check_model_name(model)
        check_alias(alias)

        def work(conn: Connection) -> AliasMove:
            q.lock_model(conn, model)
            target = rollback_target(model, alias, q.read_moves(conn, model, alias))
            return q.move_alias(conn, model, alias, target, move_record("rollback", by, reason))

        return self._write(work)

    # -- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        """Nothing to release: the engine is shared with the metadata store of this URL."""
        self._ready = False

    def __repr__(self) -> str:
        return f"SqlModelRegistry({mask_url(self.url)!r})"
