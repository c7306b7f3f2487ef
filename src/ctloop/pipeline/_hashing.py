"""Cache keys: what makes a step's result reusable.

A step's cache key is the sha256 of its normalised code, its parameter values, the
digests of its input artifacts and the versions of their materializers. The code hash
covers the step function *and* the functions, classes and constants it uses, followed
transitively through its own module and every module of the user's it imports, so
editing a function a step calls, here or in another file, invalidates that step;
installed packages count by distribution name and version. Normalisation parses the
source and drops comments, formatting, docstrings and decorators: reformatting a step
keeps its cache.
"""

from __future__ import annotations

import hashlib
import json
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ctloop.errors import MissingInputError, ParameterError
from ctloop.pipeline._origins import Origin, installed_pins, origin_of
from ctloop.pipeline._params import FilePath
from ctloop.pipeline._sources import normalised_source

CACHE_FORMAT = "1"


def sha256_text(text: str | bytes) -> str:
    """sha256 hex digest of text or bytes."""
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def code_hash(fn: Callable[..., Any]) -> str:
    """Hash of ``fn``'s normalised source and of the user's code it uses (see
    :func:`code_fingerprint`).

    >>> def double(x):
    ...     return x * 2  # comments and formatting do not count
    >>> len(code_hash(double))
    64
    """
    fingerprint = code_fingerprint(fn)
    return sha256_text("\n".join([*fingerprint.sources, *fingerprint.distributions]))


@dataclass(frozen=True)
class CodeFingerprint:
    """What a function's code hash is made of: the normalised sources (and constants,
    as ``name=value``) of the function and of the user's code it reaches, and
    ``name==version`` of the installed distributions it reaches."""

    sources: tuple[str, ...]
    distributions: tuple[str, ...]


def code_fingerprint(fn: Callable[..., Any]) -> CodeFingerprint:
    """Follow ``fn`` through the functions, classes, constants and modules it names.

    The function's own module and every module of the user's (outside site-packages
    and the standard library; see :mod:`ctloop.pipeline._origins`) count by source,
    transitively and through ``import module`` as well as ``from module import name``;
    installed packages count by distribution and version; the standard library and
    other steps (whose outputs, not code, feed this one) count not at all.

    >>> import math
    >>> def area(r):
    ...     return math.pi * r * r
    >>> code_fingerprint(area).distributions
    ()
    """
    walk = _CodeWalk(getattr(fn, "fn", fn).__module__)
    walk.code(getattr(fn, "fn", fn))  # a Step wraps its function
    return CodeFingerprint(tuple(walk.parts), tuple(installed_pins(walk.installed.values())))


class _CodeWalk:
    """One traversal from a step function; ``seen`` ends cycles between modules."""

    def __init__(self, root_module: str) -> None:
        self.root_module = root_module
        self.seen: set[int] = set()
        self.seen_modules: set[tuple[int, frozenset[str]]] = set()
        self.parts: list[str] = []
        self.installed: dict[str, Origin] = {}

    def code(self, obj: Any) -> None:
        """Add a user function's or class's source and follow what it names."""
        if id(obj) in self.seen:
            return
        self.seen.add(id(obj))
        self.parts.append(normalised_source(obj))
        if isinstance(obj, type):
            for base in obj.__bases__:
                self.value(base.__name__, base, frozenset())
            for member in _members(obj):
                self.references(member)
        else:
            self.references(obj)

    def references(self, fn: types.FunctionType) -> None:
        names = _all_names(fn.__code__)
        glb = fn.__globals__
        for name in sorted(names.intersection(glb)):
            self.value(name, glb[name], names)
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            self.value(name, contents, names)
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None:
            self.value(fn.__name__, wrapped, names)

    def value(self, name: str, value: Any, names: frozenset[str]) -> None:
        """Follow one named value: a module, a function or class, a constant, an object."""
        if isinstance(value, types.ModuleType):
            self.module(value, names)
        elif _is_step(value):
            return  # another step: its outputs, not its code, feed this one
        elif isinstance(value, types.FunctionType | type):
            self.defined_in(value.__module__, value)
        elif isinstance(wrapped := _attribute(value, "__wrapped__"), types.FunctionType):
            self.value(name, wrapped, names)  # functools.cache and the like
        elif (text := _constant(value)) is not None:
            if not name.startswith("__"):
                self.parts.append(f"{name}={text}")
        else:
            self.defined_in(type(value).__module__, type(value))

    def module(self, module: types.ModuleType, names: frozenset[str]) -> None:
        """``import scaling`` then ``scaling.scale``: follow the attributes the code names."""
        key = (id(module), names)
        if key in self.seen_modules:
            return
        self.seen_modules.add(key)
        if module.__name__ != self.root_module and not self._note(origin_of(module)):
            return
        attributes = vars(module)
        for name in sorted(names.intersection(attributes)):
            if not name.startswith("__"):
                self.value(name, attributes[name], names)

    def defined_in(self, module_name: str | None, obj: Any) -> None:
        if module_name == self.root_module:
            self.code(obj)
            return
        module = sys.modules.get(module_name or "")
        if module is None or self._note(origin_of(module)):
            self.code(obj)

    def _note(self, origin: Origin) -> bool:
        """Record an installed package; True when the origin is the user's own code."""
        if origin.kind == "installed":
            self.installed.setdefault(origin.package, origin)
        return origin.kind == "user"


def _is_step(value: Any) -> bool:
    if isinstance(value, type):
        return bool(vars(value).get("__ctloop_step__", False))
    return any(vars(klass).get("__ctloop_step__", False) for klass in type(value).__mro__)


def _attribute(value: Any, name: str) -> Any:
    """``getattr`` that survives objects whose ``__getattr__`` raises anything at all."""
    try:
        return getattr(value, name, None)
    except Exception:
        return None


def _members(cls: type) -> list[types.FunctionType]:
    """The functions of a class: methods, class and static methods, properties, and
    those of classes nested in it."""
    found: list[Any] = []
    for member in vars(cls).values():
        if isinstance(member, staticmethod | classmethod):
            member = member.__func__
        if isinstance(member, property):
            found.extend([member.fget, member.fset, member.fdel])
        elif isinstance(member, types.FunctionType):
            found.append(member)
        elif isinstance(member, type) and member.__qualname__.startswith(cls.__qualname__):
            found.extend(_members(member))
    return [f for f in found if isinstance(f, types.FunctionType)]


def _constant(value: Any, depth: int = 0) -> str | None:
    """A canonical text of a plain constant (numbers, strings, and lists, tuples, sets
    and dicts of them), or None for anything else."""
    if value is None or isinstance(value, int | float | str | bytes):  # bool is an int
        return repr(value)
    if depth > 6 or not isinstance(value, list | tuple | set | frozenset | dict):
        return None
    if isinstance(value, dict):
        pairs = [(_constant(k, depth + 1), _constant(v, depth + 1)) for k, v in value.items()]
        if any(k is None or v is None for k, v in pairs):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
    items = [_constant(item, depth + 1) for item in value]
    if any(item is None for item in items):
        return None
    texts = [t for t in items if t is not None]
    if isinstance(value, set | frozenset):
        texts.sort()
    return f"{type(value).__name__}({', '.join(texts)})"


def _all_names(code: types.CodeType) -> frozenset[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _all_names(const)
    return frozenset(names)


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
