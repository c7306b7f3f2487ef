"""What every model registry says no with, and who it records as acting.

Shared by the SQL registry (:mod:`ctloop.store.registry._sql`) and the in-memory one
(:mod:`ctloop.store.memory`), so that both answer a mistake with the same sentence.

>>> str(missing_version("flights", 7, latest=3)).split(";")[0]
"model 'flights' has no version 7 (it has versions 1 to 3)"
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from ctloop.errors import (
    AliasNotFoundError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    NotFoundError,
)
from ctloop.store.records import utcnow

__all__ = [
    "alias_not_found",
    "current_user",
    "missing_version",
    "model_not_found",
    "move_record",
    "unregistrable_artifact",
]


def current_user() -> str:
    """Who is acting: ``$USER``, else the login name, else ``unknown``."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def move_record(kind: str, by: str | None, reason: str) -> dict[str, Any]:
    """The ``kind``, ``moved_at``, ``moved_by`` and ``reason`` of an alias move.

    Call it while the model is locked, so that times follow the order of moves.
    """
    return {"kind": kind, "moved_at": utcnow(), "moved_by": by or current_user(), "reason": reason}


def model_not_found(name: str) -> ModelNotFoundError:
    """The error for a model that does not exist."""
    return ModelNotFoundError(
        f"model {name!r} is not registered; list models with `ctloop models list` or "
        f"register a version with `ctloop models register {name} ARTIFACT_ID`"
    )


def missing_version(model: str, version: int, latest: int) -> ModelVersionNotFoundError:
    """The error for a version number that ``model`` (whose newest is ``latest``,
    0 for none) does not have."""
    have = f"versions 1 to {latest}" if latest else "no versions yet"
    return ModelVersionNotFoundError(
        f"model {model!r} has no version {version} (it has {have}); list them with "
        f"`ctloop models versions {model}`"
    )


def alias_not_found(model: str, alias: str) -> AliasNotFoundError:
    """The error for an alias a model does not have."""
    return AliasNotFoundError(
        f"model {model!r} has no alias {alias!r}; see its aliases with "
        f"`ctloop models show {model}` or set one with `ctloop models alias {model} {alias} VERSION`"
    )


def unregistrable_artifact(model: str, exc: NotFoundError) -> NotFoundError:
    """The error for a version whose artifact id (``exc`` says why) is not stored."""
    return NotFoundError(
        f"cannot register a version of model {model!r}: {exc} (the ids of a run's "
        "outputs are listed by `ctloop runs show RUN`)"
    )
