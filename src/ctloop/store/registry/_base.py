"""The model registry interface, its error contract and ``NAME@ALIAS`` references.

Error contract for every implementation:

- an unknown model raises :class:`~ctloop.errors.ModelNotFoundError`, an unknown version
  :class:`~ctloop.errors.ModelVersionNotFoundError`, an unknown alias
  :class:`~ctloop.errors.AliasNotFoundError`; each names what was looked for and how to
  list what exists;
- a malformed model name, alias or reference raises
  :class:`~ctloop.errors.ModelReferenceError`;
- registering a version of an artifact or run that is not stored raises
  :class:`~ctloop.errors.NotFoundError` (the metadata store's);
- a rollback with nothing to go back to raises :class:`~ctloop.errors.RollbackError`;
- every write is one transaction, and every change of an alias writes its history row in
  the same transaction: concurrent writers of one model are serialised by the database,
  version numbers are never shared and the history never loses a move;
- an unreachable database raises :class:`~ctloop.errors.StoreUnavailableError`.

Rollback semantics: the alias history is an undo stack. ``set`` and ``delete`` moves
push; a ``rollback`` undoes the latest move that is not undone yet, moving the alias back
to the version it held before that move. So a second rollback goes one step further
back; a ``set`` after a rollback starts a new branch (as an editor's undo does). A move
that created the alias cannot be rolled back: the alias would be left empty.

>>> parse_reference("flights@champion"), parse_reference("flights@3"), parse_reference("flights")
(('flights', 'champion'), ('flights', 3), ('flights', None))
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ctloop.errors import ModelReferenceError, ModelVersionNotFoundError
from ctloop.store._checks import matching
from ctloop.store.registry._records import AliasMove, ModelVersion, RegisteredModel
from ctloop.store.registry._rules import current_user

__all__ = [
    "ModelRegistry",
    "VersionDraft",
    "check_alias",
    "check_model_name",
    "parse_reference",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}")
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,99}")


@dataclass(frozen=True)
class VersionDraft:
    """A version to register, checked (see :meth:`ModelRegistry.register_version`):
    ``artifact_id`` is a full id or a prefix, ``run_id`` and ``execution_id`` ``None``
    to look the step up from the artifact's events."""

    model: str
    artifact_id: str
    run_id: str | None
    execution_id: str | None
    description: str
    tags: dict[str, str]
    by: str


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model name, else :class:`ModelReferenceError`.

    >>> check_model_name("flights-delay.v2")
    'flights-delay.v2'
    """
    return matching(
        name,
        _NAME,
        lambda: ModelReferenceError(
            f"model name {name!r} is not valid; use letters, digits, '_', '-' and '.', "
            "starting with a letter or digit (at most 200 characters), e.g. 'flights-delay'"
        ),
    )


def check_alias(alias: str) -> str:
    """``alias`` if it is a valid alias name, else :class:`ModelReferenceError`.

    An alias starts with a letter or ``_`` so that ``NAME@3`` always means version 3.

    >>> check_alias("champion")
    'champion'
    """
    return matching(
        alias,
        _ALIAS,
        lambda: ModelReferenceError(
            f"alias {alias!r} is not valid; use letters, digits, '_' and '-', starting with "
            "a letter or '_' (a number would read as a version), e.g. 'champion'"
        ),
    )


def parse_reference(reference: str) -> tuple[str, str | int | None]:
    """Split ``NAME@ALIAS``, ``NAME@VERSION`` or ``NAME`` into the name and the alias
    (a string), the version (an int) or ``None`` (the latest version)."""
    name, at, rest = reference.partition("@")
    if not at:
        return check_model_name(name), None
    check_model_name(name)
    if rest.isdigit():
        return name, int(rest)
    if not rest:
        raise ModelReferenceError(
            f"model reference {reference!r} ends with '@'; write {name}@ALIAS, "
            f"{name}@VERSION or just {name} for the latest version"
        )
    return name, check_alias(rest)


class ModelRegistry(ABC):
    """Registered models, their numbered versions, tags, descriptions and aliases with
    their full history (see the module docstring for the error contract).

    >>> from ctloop.registry import open_registry
    >>> registry = open_registry("sqlite://")
    >>> registry.list_models()
    []
    """

    # -- models -----------------------------------------------------------------------
    @abstractmethod
    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        """The model ``name``, created with ``description`` and ``tags`` if it does not
        exist (an existing model is returned unchanged)."""

    @abstractmethod
    def get_model(self, name: str) -> RegisteredModel:
        """The model ``name`` with its tags, aliases and latest version number."""

    @abstractmethod
    def list_models(self) -> list[RegisteredModel]:
        """Every registered model, by name."""

    @abstractmethod
    def update_description(
        self, name: str, description: str, *, version: int | None = None
    ) -> None:
        """Set the description of a model, or of one of its versions."""

    @abstractmethod
    def set_tag(self, name: str, key: str, value: str, *, version: int | None = None) -> None:
        """Set (or overwrite) a tag of a model, or of one of its versions."""

    @abstractmethod
    def delete_tag(self, name: str, key: str, *, version: int | None = None) -> None:
        """Remove a tag of a model or version (a tag that is not there is no error)."""

    # -- versions ---------------------------------------------------------------------
    def register_version(
        self,
        model: str,
        artifact_id: str,
        *,
        run_id: str | None = None,
        execution_id: str | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        by: str | None = None,
    ) -> ModelVersion:
        """Record the next version of ``model`` (created if new) for a stored artifact
        (full id or unique prefix). Without ``run_id`` and ``execution_id`` the step that
        wrote the artifact is looked up from its events."""
        draft = VersionDraft(
            check_model_name(model), artifact_id, run_id, execution_id, description,
            {key: str(value) for key, value in (tags or {}).items()}, by or current_user(),
        )  # fmt: skip
        return self._register_version(draft)

    @abstractmethod
    def _register_version(self, draft: VersionDraft) -> ModelVersion:
        """Record the next version of ``draft.model`` (created if new)."""

    @abstractmethod
    def get_version(self, model: str, version: int) -> ModelVersion:
        """Version ``version`` of ``model``."""

    @abstractmethod
    def list_versions(self, model: str) -> list[ModelVersion]:
        """The versions of ``model``, oldest first."""

    # -- aliases ----------------------------------------------------------------------
    @abstractmethod
    def set_alias(
        self, model: str, alias: str, version: int, *, by: str | None = None, reason: str = ""
    ) -> AliasMove | None:
        """Point ``alias`` at ``version`` and record the move; ``None`` when the alias
        already points there (nothing moved, nothing recorded)."""

    @abstractmethod
    def delete_alias(
        self, model: str, alias: str, *, by: str | None = None, reason: str = ""
    ) -> AliasMove:
        """Remove ``alias`` from ``model`` and record the move."""

    @abstractmethod
    def get_by_alias(self, model: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at."""

    @abstractmethod
    def alias_history(self, model: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``alias`` (of every alias when ``None``), oldest first."""

    @abstractmethod
    def rollback(
        self, model: str, alias: str = "champion", *, by: str | None = None, reason: str = ""
    ) -> AliasMove:
        """Undo the latest move of ``alias`` that is not undone yet (see the module
        docstring) and record the rollback."""

    # -- references and lifecycle -------------------------------------------------------
    def resolve(self, reference: str) -> ModelVersion:
        """The version ``NAME@ALIAS``, ``NAME@VERSION`` or ``NAME`` (the latest) names.

        >>> registry.resolve("flights@champion").version  # doctest: +SKIP
        3
        """
        name, which = parse_reference(reference)
        if isinstance(which, int):
            return self.get_version(name, which)
        if isinstance(which, str):
            return self.get_by_alias(name, which)
        return self.latest_version(name)

    def latest_version(self, model: str) -> ModelVersion:
        """The newest version of ``model``."""
        versions: Sequence[ModelVersion] = self.list_versions(model)
        if not versions:
            raise ModelVersionNotFoundError(
                f"model {model!r} has no versions yet; register one with "
                f"`ctloop models register {model} ARTIFACT_ID`"
            )
        return versions[-1]

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections (the registry reconnects if used again)."""
