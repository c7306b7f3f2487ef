"""Normalised source of functions and classes, read from their module's file once.

A module's file is parsed once per process (again only when its modification time or
size changes); every function and class in it is found there by qualified name, with
docstrings and decorators dropped, so comments, formatting and docstrings never reach a
cache key. What has no readable file (code typed at a prompt, a lambda, code built at run
time) falls back to ``inspect`` and, last, to the compiled bytecode.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
import textwrap
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

_Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def normalised_source(obj: Any) -> str:
    """The AST dump of a function or class, without docstrings or decorators.

    >>> def f(x):
    ...     '''Adds one.'''
    ...     return x + 1  # a comment
    >>> "Add" in normalised_source(f) and "Adds one" not in normalised_source(f)
    True
    """
    index = _module_index(getattr(obj, "__module__", None))
    node = index.find(obj) if index is not None else None
    if node is not None:
        return index.dump(node)  # type: ignore[union-attr]
    return _inspected_source(obj)


def _inspected_source(obj: Any) -> str:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        code = getattr(obj, "__code__", None)
        return repr(obj) if code is None else _bytecode(code)
    _strip(tree)
    only = tree.body[0] if len(tree.body) == 1 else None
    return ast.dump(only if isinstance(only, _Definition) else tree, include_attributes=False)


def _bytecode(code: CodeType) -> str:
    """Compiled code as text, the same in every process (nested code objects, whose
    ``repr`` holds an address, are written out instead)."""
    consts = [_bytecode(c) if isinstance(c, CodeType) else repr(c) for c in code.co_consts]
    return f"{code.co_code.hex()}:{consts}:{code.co_names!r}"


@dataclass
class _ModuleIndex:
    """The definitions of one module file, by qualified name."""

    stamp: tuple[str, int, int]
    definitions: dict[str, list[_Definition]]
    dumps: dict[int, str] = field(default_factory=dict)

    def find(self, obj: Any) -> _Definition | None:
        """The definition of ``obj``: by qualified name, and by first line when the name
        is defined more than once (a function redefined under an ``if``)."""
        found = self.definitions.get(getattr(obj, "__qualname__", ""), [])
        if len(found) == 1:
            return found[0]
        line = getattr(getattr(obj, "__code__", None), "co_firstlineno", None)
        matching = [node for node in found if _first_line(node) == line]
        return matching[0] if len(matching) == 1 else None

    def dump(self, node: _Definition) -> str:
        text = self.dumps.get(id(node))
        if text is None:
            text = self.dumps[id(node)] = ast.dump(node, include_attributes=False)
        return text


_INDEXES: dict[str, _ModuleIndex] = {}


def _module_index(module_name: str | None) -> _ModuleIndex | None:
    module = sys.modules.get(module_name or "")
    file = getattr(module, "__file__", None)
    if not module_name or not file or not file.endswith(".py"):
        return None
    try:
        stat = os.stat(file)
    except OSError:
        return None
    stamp = (file, stat.st_mtime_ns, stat.st_size)
    index = _INDEXES.get(module_name)
    if index is not None and index.stamp == stamp:
        return index
    try:
        with open(file, "rb") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return None
    definitions: dict[str, list[_Definition]] = {}
    _collect(tree.body, [], definitions)
    index = _INDEXES[module_name] = _ModuleIndex(stamp, definitions)
    return index


def _collect(body: list[ast.stmt], scope: list[str], found: dict[str, list[_Definition]]) -> None:
    """File every function and class of ``body`` under its ``__qualname__``, stripped.

    Definitions are statements, so only statement lists are visited (an ``if``'s or a
    ``try``'s too), never expressions: a tenth of the work of a full walk.
    """
    for node in body:
        if isinstance(node, _Definition):
            _strip_definition(node)
            found.setdefault(".".join([*scope, node.name]), []).append(node)
            inner = [node.name] if isinstance(node, ast.ClassDef) else [node.name, "<locals>"]
            _collect(node.body, [*scope, *inner], found)
            continue
        for name in ("body", "orelse", "finalbody"):
            statements = getattr(node, name, None)
            if isinstance(statements, list):
                _collect(statements, scope, found)
        for part in getattr(node, "handlers", None) or getattr(node, "cases", None) or ():
            _collect(part.body, scope, found)


def _first_line(node: _Definition) -> int:
    """The line a function's code starts on: its first decorator's, else its ``def``'s."""
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def _strip(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, _Definition):
            _strip_definition(node)


def _strip_definition(node: _Definition) -> None:
    """Drop the docstring and decorators (keeping where they were, for :func:`_first_line`)."""
    if node.decorator_list:
        node.lineno = _first_line(node)
        node.decorator_list = []
    _drop_docstring(node)


def _drop_docstring(node: _Definition) -> None:
    body = node.body
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        node.body = body[1:] or [ast.Pass()]
