"""Cache keys: what makes a step's result reusable.

A step's cache key is the sha256 of its normalised code, its parameter values, the
digests of its input artifacts and the versions of their materializers. The code hash
covers the step function *and* the module-level functions and classes of the same
module that it calls (transitively), so editing a helper invalidates the steps that use
it. Normalisation parses the source and drops comments, formatting, docstrings and
decorators: reformatting a step keeps its cache.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import textwrap
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from ctloop.errors import MissingInputError, ParameterError
from ctloop.pipeline.params import FilePath

CACHE_FORMAT = "1"


def sha256_text(text: str | bytes) -> str:
    """sha256 hex digest of text or bytes."""
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def code_hash(fn: Callable[..., Any]) -> str:
    """Hash of ``fn``'s normalised source and the same-module code it uses."""
    seen: set[int] = set()
    parts: list[str] = []
    _collect_code(fn, fn.__module__, seen, parts)
    return sha256_text("\n".join(parts))


def normalised_source(obj: Any) -> str:
    """The AST dump of a function or class, without docstrings or decorators."""
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        code = getattr(obj, "__code__", None)
        if code is None:
            return repr(obj)
        return f"{code.co_code.hex()}:{code.co_consts!r}:{code.co_names!r}"
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.decorator_list = []
            _drop_docstring(node)
    return ast.dump(tree, include_attributes=False)


def _drop_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
    body = node.body
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        node.body = body[1:] or [ast.Pass()]


def _collect_code(obj: Any, module: str, seen: set[int], parts: list[str]) -> None:
    target = getattr(obj, "fn", obj)  # a Step wraps its function
    if id(target) in seen:
        return
    seen.add(id(target))
    parts.append(normalised_source(target))
    for name, value in sorted(_referenced_globals(target).items()):
        if isinstance(value, types.FunctionType | type) and value.__module__ == module:
            if getattr(value, "__ctloop_step__", False):
                continue  # another step: its outputs, not its code, feed this one
            _collect_code(value, module, seen, parts)
        elif isinstance(value, int | float | str | bool | bytes) and not name.startswith("__"):
            parts.append(f"{name}={value!r}")


def _referenced_globals(obj: Any) -> dict[str, Any]:
    if isinstance(obj, type):
        names: dict[str, Any] = {}
        for member in vars(obj).values():
            if isinstance(member, types.FunctionType):
                names.update(_referenced_globals(member))
        return names
    code = getattr(obj, "__code__", None)
    glb = getattr(obj, "__globals__", {})
    if code is None:
        return {}
    found: dict[str, Any] = {}
    for name in _all_names(code):
        if name in glb:
            found[name] = glb[name]
    return found


def _all_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _all_names(const)
    return names


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's relative paths and file contents."""
    if path.is_file():
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    if path.is_dir():
        outer = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            outer.update(child.relative_to(path).as_posix().encode() + b"\0")
            outer.update(file_digest(child).encode())
        return outer.hexdigest()
    raise MissingInputError(f"input path {str(path)!r} does not exist")


def param_fingerprint(owner: str, params: Mapping[str, Any]) -> bytes:
    """Canonical bytes of parameter values; ``FilePath`` values stand for their content."""

    def default(value: Any) -> Any:
        if isinstance(value, FilePath):
            return {"file": str(value), "sha256": file_digest(value)}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, set | frozenset):
            return sorted(value)
        if hasattr(value, "tolist"):  # numpy scalars and arrays
            return value.tolist()
        raise TypeError

    try:
        return json.dumps(
            params, default=default, sort_keys=True, separators=(",", ":"), allow_nan=True
        ).encode()
    except (TypeError, ValueError) as exc:
        bad = {k: type(v).__name__ for k, v in params.items() if not _jsonable(v)}
        raise ParameterError(
            f"{owner} got parameter(s) {bad or params} that cannot be stored as JSON; pass "
            "plain values (numbers, strings, lists, dicts, paths) or produce the value in a "
            "step and pass its output"
        ) from exc


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, default=lambda v: str(v) if isinstance(v, Path) else _raise(v))
    except (TypeError, ValueError):
        return False
    return True


def _raise(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def cache_key(
    *,
    code: str,
    params: bytes,
    inputs: Mapping[str, tuple[str, str]],
) -> str:
    """The cache key of one step invocation.

    ``inputs`` maps argument name to ``(artifact digest, materializer@version)``.
    """
    payload = orjson.dumps(
        {
            "format": CACHE_FORMAT,
            "code": code,
            "params": sha256_text(params),
            "inputs": {k: list(v) for k, v in sorted(inputs.items())},
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return sha256_text(payload)
