"""Pipeline parameters: the ``FilePath`` type and conversion of command-line values.

A parameter annotated ``FilePath`` is a path to a file or folder that the step reads;
its *content* (not its name) goes into the cache key, so an edited input file is a
cache miss. Command-line values (``-p key=value``) are converted by the pipeline
function's annotations: ``int``, ``float``, ``bool``, ``str``, ``Path``/``FilePath``,
and JSON for lists and dicts.
"""

from __future__ import annotations

import inspect
import json
import typing
from pathlib import Path, PurePosixPath
from typing import Any

from ctloop.errors import MissingInputError, ParameterError

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


class FilePath(type(Path())):  # type: ignore[misc]
    """A path to an input file or folder, hashed by content for caching.

    >>> from ctloop import step, FilePath
    >>> @step
    ... def load(path: FilePath) -> dict: ...
    """


def annotation_of(fn: Any, name: str) -> Any:
    """The resolved annotation of parameter ``name`` of ``fn`` (``Any`` if none)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolved forward references: fall back to raw annotations
        hints = {k: v for k, v in getattr(fn, "__annotations__", {}).items()}
    return hints.get(name, Any)


def is_file_path(annotation: Any) -> bool:
    """Whether an annotation is ``FilePath`` (or ``FilePath | None``)."""
    if annotation is FilePath or annotation == "FilePath":
        return True
    return any(arg is FilePath for arg in typing.get_args(annotation))


def coerce_file_paths(fn: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Turn str/Path values of ``FilePath`` parameters into ``FilePath`` objects."""
    out = dict(values)
    for name, value in values.items():
        if value is not None and is_file_path(annotation_of(fn, name)):
            out[name] = FilePath(value)
    return out


def check_file_paths(owner: str, values: dict[str, Any]) -> None:
    """Raise :class:`MissingInputError` for a ``FilePath`` value that does not exist."""
    for name, value in values.items():
        if isinstance(value, FilePath) and not value.exists():
            raise MissingInputError(
                f"parameter '{name}' of {owner} points at {str(value)!r}, which does not "
                "exist; create the file or pass another path with "
                f"`-p {name}=PATH`"
            )


def convert_cli_value(fn: Any, name: str, raw: str) -> Any:
    """Convert the command-line string ``raw`` for parameter ``name`` of ``fn``."""
    annotation = annotation_of(fn, name)
    target = _plain_type(annotation)
    try:
        return _convert(raw, target)
    except (ValueError, json.JSONDecodeError) as exc:
        type_name = getattr(target, "__name__", str(target))
        raise ParameterError(
            f"parameter '{name}' expects {type_name} but got {raw!r}: {exc}"
        ) from exc


def parse_cli_params(fn: Any, pairs: list[str], owner: str) -> dict[str, Any]:
    """Parse ``key=value`` strings against ``fn``'s signature.

    Unknown keys raise :class:`ParameterError` listing the known ones.
    """
    known = list(inspect.signature(fn).parameters)
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"parameter {pair!r} must look like key=value")
        if key not in known:
            raise ParameterError(
                f"{owner} has no parameter {key!r}; its parameters are: "
                f"{', '.join(known) or '(none)'}"
            )
        values[key] = convert_cli_value(fn, key, raw)
    return values


def to_json_param(value: Any) -> Any:
    """A JSON-storable form of a parameter value (paths become strings)."""
    if isinstance(value, PurePosixPath | Path):
        return str(value)
    if isinstance(value, tuple):
        return [to_json_param(v) for v in value]
    if isinstance(value, list):
        return [to_json_param(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_param(v) for k, v in value.items()}
    return value


def _plain_type(annotation: Any) -> Any:
    if annotation is inspect.Parameter.empty:
        return Any
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return args[0]
    if origin in (list, dict, tuple):
        return origin
    return annotation


def _convert(raw: str, target: Any) -> Any:
    if target is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError("use true or false")
    if target is int:
        return int(raw)
    if target is float:
        return float(raw)
    if target is FilePath:
        return FilePath(raw)
    if target is Path:
        return Path(raw)
    if target in (list, dict, tuple):
        value = json.loads(raw)
        if not isinstance(value, list if target is not dict else dict):
            raise ValueError(f"expected a JSON {target.__name__}")
        return value
    if target is str:
        return raw
    # untyped: JSON when it parses, else the string itself
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
