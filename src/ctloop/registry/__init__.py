"""The model registry: named models, numbered versions, tags, and aliases with history.

A version points at a stored artifact (the model) and the run that made it; aliases such
as ``champion`` name the version in use, every move of an alias is recorded, and
``rollback`` undoes the latest one. The registry lives in the metadata database.

>>> registry = open_registry("sqlite://")   # in memory; omit the URL for the project's store
>>> registry.list_models()
[]

Typical use (``artifact_id`` is an output of a training run)::

    version = registry.register_version("flights", artifact_id)
    registry.set_alias("flights", "champion", version.version, reason="AUC 0.91 > 0.89")
    registry.resolve("flights@champion")
    registry.rollback("flights")          # champion goes back to the previous holder

Environments (``environments:`` of ``ctloop.yaml``) each have their own workspace;
:func:`promote_model` copies a version and its lineage from one into the next, behind an
approval where the environment requires one (``ctloop env``).
"""

from __future__ import annotations

import typing

from ctloop.registry._environments import (
    PROJECT,
    Environment,
    environment_named,
    load_environments,
)
from ctloop.registry._promotion import Promotion, decide_promotion, promote_model
from ctloop.store.registry import (
    AliasMove,
    ModelRegistry,
    ModelVersion,
    RegisteredModel,
    parse_reference,
)

if typing.TYPE_CHECKING:
    from ctloop.store.registry import SqlModelRegistry

__all__ = [
    "PROJECT",
    "AliasMove",
    "Environment",
    "ModelRegistry",
    "ModelVersion",
    "Promotion",
    "RegisteredModel",
    "SqlModelRegistry",
    "decide_promotion",
    "environment_named",
    "load_environments",
    "open_registry",
    "parse_reference",
    "promote_model",
    "resolve",
]


def open_registry(url: str | None = None) -> ModelRegistry:
    """The registry of the workspace on the metadata database at ``url`` (default: the
    project's store, ``CTLOOP_STORE_URL`` or ``ctloop.yaml``, else
    ``.ctloop/metadata.db``): a shorthand for ``Workspace.open(url).registry`` in
    scripts; code that already holds a workspace uses its ``registry``. With no
    ``url`` and a ``server`` setting, it is the team server's registry."""
    from ctloop.store.workspace import Workspace

    return Workspace.open(url).registry


def resolve(reference: str, registry: ModelRegistry | None = None) -> ModelVersion:
    """The version ``NAME@ALIAS``, ``NAME@VERSION`` or ``NAME`` (latest) names.

    >>> resolve("flights@champion").artifact_id  # doctest: +SKIP
    '3f9c…'
    """
    return (registry or open_registry()).resolve(reference)


def __getattr__(name: str) -> object:
    if name == "SqlModelRegistry":
        from ctloop.store.registry import SqlModelRegistry

        return SqlModelRegistry
    raise AttributeError(f"module 'ctloop.registry' has no attribute {name!r}")
