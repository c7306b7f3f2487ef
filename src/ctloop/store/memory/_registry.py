"""The in-memory model registry: the fake of
:class:`~ctloop.store.registry.ModelRegistry`, passing the same contract tests as the SQL
registry.

It keeps its models beside a :class:`~ctloop.store.memory.MemoryMetadataStore` and
shares its lock, as the SQL registry shares the metadata database: a version must name
a stored artifact (by id or unique prefix) and run, its artifact and run are kept from
garbage collection, and a deleted run leaves the version with ``run_id = None``.

>>> from ctloop.store.memory import MemoryMetadataStore
>>> registry = MemoryModelRegistry(MemoryMetadataStore())
>>> registry.create_model("flights", description="delay classifier").name
'flights'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ctloop.errors import IntegrityError, NotFoundError
from ctloop.store.memory._metadata import MemoryMetadataStore
from ctloop.store.records import utcnow
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
    missing_version,
    model_not_found,
    move_record,
    unregistrable_artifact,
)

__all__ = ["MemoryModelRegistry"]


class MemoryModelRegistry(ModelRegistry):
    """A :class:`ModelRegistry` in dicts and lists, under the lock of ``metadata`` (whose
    artifacts and runs its versions name).

    >>> MemoryModelRegistry(MemoryMetadataStore()).list_models()
    []
    """

    def __init__(self, metadata: MemoryMetadataStore) -> None:
        self._metadata = metadata
        self._lock = metadata.lock
        self._models: dict[str, RegisteredModel] = {}  # without tags, aliases, latest
        self._model_tags: dict[str, dict[str, str]] = {}
        self._versions: dict[str, list[ModelVersion]] = {}  # without tags and aliases
        self._version_tags: dict[tuple[str, int], dict[str, str]] = {}
        self._aliases: dict[str, dict[str, int]] = {}
        self._moves: list[AliasMove] = []
        metadata.add_references(self)

    # -- models -----------------------------------------------------------------------
    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        """The model ``name``, created with ``description`` and ``tags`` if new."""
        check_model_name(name)
        with self._lock:
            if self._ensure_model(name, description):
                self._model_tags[name].update({k: str(v) for k, v in (tags or {}).items()})
            return self._model_record(name)

    def get_model(self, name: str) -> RegisteredModel:
        """The model ``name`` with its tags, aliases and latest version number."""
        check_model_name(name)
        with self._lock:
            self._require_model(name)
            return self._model_record(name)

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""
        with self._lock:
            return [self._model_record(name) for name in sorted(self._models)]

    def update_description(
        self, name: str, description: str, *, version: int | None = None
    ) -> None:
        """Set the description of a model, or of one of its versions."""
        check_model_name(name)
        with self._lock:
            self._require_model(name)
            if version is None:
                self._models[name] = replace(self._models[name], description=description)
            else:
                versions = self._versions[name]
                index = versions.index(self._version(name, version))
                versions[index] = replace(versions[index], description=description)
            self._touch(name)

    def set_tag(self, name: str, key: str, value: str, *, version: int | None = None) -> None:
        """Set (or overwrite) a tag of a model, or of one of its versions."""
        with self._lock:
            self._tags_of(name, version)[key] = str(value)

    def delete_tag(self, name: str, key: str, *, version: int | None = None) -> None:
        """Remove a tag of a model or version (a tag that is not there is no error)."""
        with self._lock:
            self._tags_of(name, version).pop(key, None)

    # -- versions ---------------------------------------------------------------------
    def _register_version(self, draft: VersionDraft) -> ModelVersion:
        model = draft.model
        with self._lock:
            try:
                artifact = self._metadata.get_artifact(draft.artifact_id).id
            except NotFoundError as exc:
                raise unregistrable_artifact(model, exc) from exc
            source = self._source(artifact, draft.run_id, draft.execution_id)
            self._ensure_model(model, "")
            versions = self._versions[model]
            now = utcnow()
            record = ModelVersion(
                model, len(versions) + 1, artifact, *source, draft.description, now, draft.by
            )
            versions.append(record)
            self._version_tags[(model, record.version)] = dict(draft.tags)
            self._touch(model)
            return self._version_record(record)

    def _source(
        self, artifact_id: str, run_id: str | None, execution_id: str | None
    ) -> tuple[str | None, str | None]:
        if execution_id is not None:
            owner = self._metadata.get_execution(execution_id).run_id
            if run_id is not None and not self._is_run(run_id):
                raise IntegrityError(
                    f"run {run_id!r} does not exist; give the full id of the run that "
                    f"made execution {execution_id!r}, or leave the run out"
                )
            return (run_id or owner), execution_id
        if run_id is not None:
            return self._metadata.get_run(run_id).id, None
        return self._metadata.producer_of(artifact_id)

    def _is_run(self, run_id: str) -> bool:
        try:
            return self._metadata.get_run(run_id).id == run_id
        except NotFoundError:
            return False

    def get_version(self, model: str, version: int) -> ModelVersion:
        """Version ``version`` of ``model``."""
        check_model_name(model)
        with self._lock:
            return self._version_record(self._version(model, version))

    def list_versions(self, model: str) -> list[ModelVersion]:
        """The versions of ``model``, oldest first."""
        check_model_name(model)
        with self._lock:
            self._require_model(model)
            return [self._version_record(v) for v in self._versions[model]]

    # -- aliases ----------------------------------------------------------------------
    def set_alias(
        self, model: str, alias: str, version: int, *, by: str | None = None, reason: str = ""
    ) -> AliasMove | None:
        """Point ``alias`` at ``version`` and record the move (``None``: already there)."""
        check_model_name(model)
        check_alias(alias)
        with self._lock:
            self._require_model(model)
            self._version(model, version)
            if self._aliases[model].get(alias) == version:
                return None
            return self._move(model, alias, version, move_record("set", by, reason))

    def delete_alias(
        self, model: str, alias: str, *, by: str | None = None, reason: str = ""
    ) -> AliasMove:
        """Remove ``alias`` from ``model`` and record the move."""
        check_model_name(model)
        check_alias(alias)
        with self._lock:
            self._require_model(model)
            if alias not in self._aliases[model]:
                raise alias_not_found(model, alias)
            return self._move(model, alias, None, move_record("delete", by, reason))

    def get_by_alias(self, model: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at."""
        check_model_name(model)
        check_alias(alias)
        with self._lock:
            self._require_model(model)
            version = self._aliases[model].get(alias)
            if version is None:
                raise alias_not_found(model, alias)
            return self._version_record(self._version(model, version))

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``alias`` (of every alias when ``None``), oldest first."""
        check_model_name(model)
        if alias is not None:
            check_alias(alias)
        with self._lock:
            self._require_model(model)
            return self._history(model, alias)

    def rollback(
        self, model: str, alias: str = "champion", *, by: str | None = None, reason: str = ""
    ) -> AliasMove:
        """Undo the latest move of ``alias`` not undone yet, and record the rollback."""
        check_model_name(model)
        check_alias(alias)
        with self._lock:
            self._require_model(model)
            target = rollback_target(model, alias, self._history(model, alias))
            return self._move(model, alias, target, move_record("rollback", by, reason))

    # -- what the metadata store asks (see MetadataReferences) --------------------------
    def referenced_artifacts(self) -> dict[str, str]:
        """Artifact id → the first model version that names it."""
        kept: dict[str, str] = {}
        with self._lock:
            for versions in self._versions.values():
                for v in versions:
                    kept.setdefault(v.artifact_id, f"model version {v.model!r} v{v.version}")
        return kept

    def referenced_runs(self) -> set[str]:
        """Ids of the runs that made a model version."""
        with self._lock:
            return {v.run_id for versions in self._versions.values() for v in versions if v.run_id}

    def forget_runs(self, run_ids: set[str], execution_ids: set[str]) -> None:
        """Deleted runs and executions: versions keep their artifact, lose their source."""
        with self._lock:
            for versions in self._versions.values():
                for index, v in enumerate(versions):
                    changes: dict[str, Any] = {}
                    if v.run_id in run_ids:
                        changes["run_id"] = None
                    if v.execution_id in execution_ids:
                        changes["execution_id"] = None
                    if changes:
                        versions[index] = replace(v, **changes)

    def __repr__(self) -> str:
        return f"MemoryModelRegistry(models={len(self._models)})"

    # -- state, under the lock ---------------------------------------------------------
    def _ensure_model(self, name: str, description: str) -> bool:
        """Create the model unless it exists; whether it was created."""
        if name in self._models:
            return False
        now = utcnow()
        self._models[name] = RegisteredModel(name, description, now, now)
        self._model_tags[name] = {}
        self._versions[name] = []
        self._aliases[name] = {}
        return True

    def _require_model(self, name: str) -> None:
        if name not in self._models:
            raise model_not_found(name)

    def _touch(self, name: str) -> None:
        self._models[name] = replace(self._models[name], updated_at=utcnow())

    def _tags_of(self, name: str, version: int | None) -> dict[str, str]:
        check_model_name(name)
        self._require_model(name)
        if version is None:
            return self._model_tags[name]
        return self._version_tags[(name, self._version(name, version).version)]

    def _version(self, model: str, version: int) -> ModelVersion:
        """The stored version; a missing model or version raises."""
        versions = self._versions.get(model)
        if versions is None:
            raise model_not_found(model)
        if isinstance(version, int) and 1 <= version <= len(versions):
            return versions[version - 1]
        raise missing_version(model, version, len(versions))

    def _model_record(self, name: str) -> RegisteredModel:
        versions = self._versions[name]
        return replace(
            self._models[name],
            tags=dict(sorted(self._model_tags[name].items())),
            aliases=dict(sorted(self._aliases[name].items())),
            latest_version=len(versions) or None,
        )

    def _version_record(self, version: ModelVersion) -> ModelVersion:
        holders = self._aliases[version.model]
        return replace(
            version,
            tags=dict(sorted(self._version_tags[(version.model, version.version)].items())),
            aliases=tuple(sorted(a for a, number in holders.items() if number == version.version)),
        )

    def _history(self, model: str, alias: str | None) -> list[AliasMove]:
        return [m for m in self._moves if m.model == model and alias in (None, m.alias)]

    def _move(
        self, model: str, alias: str, target: int | None, record: dict[str, Any]
    ) -> AliasMove:
        """Point ``alias`` at ``target`` (remove it when ``None``) and append the move."""
        holders = self._aliases[model]
        current = holders.get(alias)
        if target is None:
            del holders[alias]
        else:
            holders[alias] = target
        move = AliasMove(
            id=len(self._moves) + 1,
            model=model,
            alias=alias,
            from_version=current,
            to_version=target,
            **record,
        )
        self._moves.append(move)
        return move
