"""Artifact paths a client may name: relative, ``/``-separated, nothing that could climb
out of an artifact's folder if a path ever reached a file system.

Bytes are always found by digest, so a bad path reaches no file; it is still refused
with a 400 naming it, so a client learns at once that the path cannot be one.

>>> path_problem("model/MLmodel") is None
True
>>> path_problem("a/../../etc/passwd")
"it climbs with '..'"
"""

from __future__ import annotations

from urllib.parse import unquote

__all__ = ["path_problem"]


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot be an artifact's file path, ``None`` when it can. A path that
    is still URL-encoded is judged decoded too (``%2e%2e%2f`` is ``../``)."""
    for form in dict.fromkeys((path, unquote(path))):
        problem = _problem(form)
        if problem is not None:
            return problem
    return None


def _problem(path: str) -> str | None:
    if not path:
        return "it is empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "it holds a control character (NUL, newline, …)"
    if "\\" in path:
        return "it holds a backslash; separate folders with '/'"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "it is absolute; name it relative to the artifact"
    parts = path.split("/")
    if ".." in parts:
        return "it climbs with '..'"
    if any(p in ("", ".") for p in parts):
        return "it has an empty or '.' segment"
    return None
