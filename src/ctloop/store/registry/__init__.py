"""Where the model registry keeps its state: registered models, numbered versions, tags
and aliases with their history, in the metadata database.

This is the storage half of the registry (the interface, its SQL implementation and the
records); what is built on it — model cards, lineage of a version, the registry's
pipeline steps — lives above, in :mod:`ctloop.registry` and :mod:`ctloop.components`.
Serving reads models through this package, so it never imports those.

>>> from ctloop.store.registry import SqlModelRegistry
>>> SqlModelRegistry("sqlite://").list_models()
[]
"""

from __future__ import annotations

import typing

from ctloop.store.registry._base import (
    ModelRegistry,
    check_alias,
    check_model_name,
    parse_reference,
)
from ctloop.store.registry._records import MOVE_KINDS, AliasMove, ModelVersion, RegisteredModel

if typing.TYPE_CHECKING:
    from ctloop.store.registry._sql import SqlModelRegistry

__all__ = [
    "MOVE_KINDS",
    "AliasMove",
    "ModelRegistry",
    "ModelVersion",
    "RegisteredModel",
    "SqlModelRegistry",
    "check_alias",
    "check_model_name",
    "parse_reference",
]


def __getattr__(name: str) -> object:
    if name == "SqlModelRegistry":  # SQLAlchemy is imported when a registry is opened
        from ctloop.store.registry._sql import SqlModelRegistry

        return SqlModelRegistry
    raise AttributeError(f"module 'ctloop.store.registry' has no attribute {name!r}")
