"""Which materializer saves a value, and which one loads an artifact back.

Lookup order: materializers registered with ``first=True`` (latest first), then the
built-ins, then those registered with ``first=False``. The built-ins are created on
first use; none of them imports pandas, pyarrow, numpy or scikit-learn until it saves
or loads a value of that kind.

>>> materializer_for({"auc": 0.91}).name
'ctloop.json'
"""

from __future__ import annotations

import threading
from typing import Any

from ctloop.artifacts._materializer import Materializer
from ctloop.errors import ArtifactError, UnsupportedTypeError

__all__ = ["materializer_for", "materializer_named", "register_materializer", "registered"]

_lock = threading.Lock()
_front: list[Materializer] = []
_back: list[Materializer] = []
_builtins: list[Materializer] = []


def register_materializer(materializer: Materializer, *, first: bool = True) -> None:
    """Make ``materializer`` available for saving and loading.

    With ``first=True`` (the default) it is tried before every built-in and every
    materializer registered earlier; with ``first=False`` only when nothing else
    handles a value. Registering a materializer with the name of one registered
    before replaces it.

    >>> register_materializer(PointMaterializer())  # doctest: +SKIP
    """
    if not isinstance(materializer, Materializer):
        raise ArtifactError(
            f"register_materializer() takes a Materializer instance, not "
            f"{_qualified_name(materializer)}; subclass ctloop.artifacts.Materializer "
            "and pass an instance"
        )
    for attribute in ("name", "artifact_type"):
        if not isinstance(getattr(materializer, attribute, None), str):
            raise ArtifactError(
                f"materializer {type(materializer).__qualname__} has no '{attribute}' "
                "string; set it as a class attribute"
            )
    with _lock:
        for chain in (_front, _back):
            chain[:] = [m for m in chain if m.name != materializer.name]
        if first:
            _front.insert(0, materializer)
        else:
            _back.append(materializer)


def registered() -> list[Materializer]:
    """Every materializer in lookup order."""
    return [*_front, *_builtin_materializers(), *_back]


def materializer_for(value: Any) -> Materializer:
    """The first materializer that can save ``value``.

    Raises :class:`~ctloop.errors.UnsupportedTypeError` naming the value's type and
    the fix when none can.
    """
    for materializer in registered():
        if materializer.can_save(value):
            return materializer
    raise UnsupportedTypeError(
        f"no materializer can save a value of type {_qualified_name(value)}; return a "
        f"supported type ({_supported_types()}) or register a materializer for it with "
        "ctloop.register_materializer (see the docstring of ctloop.artifacts.Materializer)"
    )


def materializer_named(name: str) -> Materializer:
    """The materializer registered under ``name`` (as stored on artifact records)."""
    for materializer in registered():
        if materializer.name == name:
            return materializer
    raise ArtifactError(
        f"no materializer named {name!r} is registered, so this artifact cannot be "
        "loaded; import the module that registers it (with "
        "ctloop.register_materializer) before loading"
    )


def _builtin_materializers() -> list[Materializer]:
    if not _builtins:
        with _lock:
            if not _builtins:
                from ctloop.artifacts._builtin import builtin_materializers

                _builtins.extend(builtin_materializers())
    return _builtins


def _supported_types() -> str:
    """The handled type names, one per class (``pandas.DataFrame`` and its alias
    ``pandas.core.frame.DataFrame`` are listed once)."""
    names: dict[str, str] = {}
    for materializer in registered():
        for handled in materializer.handles:
            short = handled.removeprefix("builtins.").replace("NoneType", "None")
            names.setdefault(short.rpartition(".")[2], short)
    return ", ".join(names.values())


def _qualified_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}".removeprefix("builtins.")
