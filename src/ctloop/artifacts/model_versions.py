"""Registered model versions, loaded from a workspace: the registry names the artifact,
the artifact store holds its files (the serving pool and batch scoring load them so).

It lives beside :mod:`ctloop.artifacts.model`, not in it, because it reaches the store
and the model types must not (the domain code imports them).

>>> loaded = load_version(workspace, "flights@champion", cache_dir=home / "cache")  # doctest: +SKIP
>>> loaded.reference, loaded.model.task  # doctest: +SKIP
('flights@3', 'classification')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ctloop.artifacts.model import Model
from ctloop.errors import ServingError

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["LoadedVersion", "load_version"]


@dataclass(frozen=True)
class LoadedVersion:
    """Version ``version`` of registered model ``name``, loaded."""

    version: int
    artifact_id: str
    model: Model = field(repr=False, compare=False)
    name: str = ""

    @property
    def reference(self) -> str:
        """``NAME@VERSION``."""
        return f"{self.name}@{self.version}"


def load_version(
    workspace: Workspace,
    model: str,
    version: int | None = None,
    *,
    cache_dir: Path,
) -> LoadedVersion:
    """The version of registered ``model`` that ``version`` numbers, or that ``model``
    names as a reference (``NAME@ALIAS``, ``NAME@N``, ``NAME``: the latest), loaded from
    ``workspace`` with its files cached in ``cache_dir``.

    A version whose artifact is not a ``Model`` raises :class:`~ctloop.errors.ServingError`.
    """
    from ctloop.artifacts import load_value

    registry = workspace.registry
    found = registry.resolve(model) if version is None else registry.get_version(model, version)
    record = workspace.metadata.get_artifact(found.artifact_id)
    value = load_value(record, workspace.artifacts, cache_dir=Path(cache_dir))
    if not isinstance(value, Model):
        raise ServingError(
            f"version {found.version} of model {found.model!r} is a {record.type} artifact, "
            "not a Model; register the output of a step that returns "
            "ctloop.artifacts.model.Model"
        )
    return LoadedVersion(found.version, found.artifact_id, value, found.model)
