"""Immutable records of the model registry.

A :class:`RegisteredModel` is a name (``flights-delay``) with a description and tags; its
:class:`ModelVersion` s are numbered 1, 2, … and each points at a stored artifact and the
run that made it. Aliases (``champion``, ``challenger``, any name) point at one version
each; every change of an alias is an :class:`AliasMove` in the alias history.

>>> move = AliasMove(1, "flights", "champion", "set", None, 1, utcnow(), "ada", "first")
>>> move.describe()
'champion: - → v1 (set by ada)'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ctloop.store.records import utcnow  # noqa: F401 - used by the examples

__all__ = ["MOVE_KINDS", "AliasMove", "ModelVersion", "MoveKind", "RegisteredModel"]

MoveKind = Literal["set", "delete", "rollback"]
MOVE_KINDS: tuple[str, ...] = ("set", "delete", "rollback")


@dataclass(frozen=True)
class RegisteredModel:
    """A named model: its description, tags, aliases (alias → version) and latest version.

    >>> RegisteredModel("flights", "", utcnow(), utcnow()).latest_version is None
    True
    """

    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    latest_version: int | None = None


@dataclass(frozen=True)
class ModelVersion:
    """Version ``version`` of model ``model``: artifact ``artifact_id``, made by run
    ``run_id`` (``None`` when unknown or deleted by garbage collection).

    >>> v = ModelVersion("flights", 3, "a1b2", "r9", None, "", utcnow(), "ada")
    >>> v.reference
    'flights@3'
    """

    model: str
    version: int
    artifact_id: str
    run_id: str | None
    execution_id: str | None
    description: str
    created_at: datetime
    created_by: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        """``NAME@VERSION``, what :func:`ctloop.registry.resolve` accepts."""
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class AliasMove:
    """One change of an alias, in the order the database recorded it (``id``).

    ``kind`` is ``set`` (pointed at ``to_version``), ``delete`` (``to_version`` is
    ``None``) or ``rollback`` (undid the latest move not undone yet). ``from_version`` is
    ``None`` when the alias was new.
    """

    id: int
    model: str
    alias: str
    kind: str
    from_version: int | None
    to_version: int | None
    moved_at: datetime
    moved_by: str
    reason: str

    def describe(self) -> str:
        """One line for people: ``champion: v2 → v3 (set by ada)``."""
        return (
            f"{self.alias}: {_label(self.from_version)} → {_label(self.to_version)} "
            f"({self.kind} by {self.moved_by})"
        )


def _label(version: int | None) -> str:
    return "-" if version is None else f"v{version}"
