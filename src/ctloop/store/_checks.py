"""Checks of names and keys that callers pass in: a value matching its pattern, or an
error that says what a valid one looks like."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["matching"]


def matching(value: object, pattern: re.Pattern[str], error: Callable[[], Exception]) -> str:
    """``value`` if it is a string that ``pattern`` matches in full, else ``error()``
    raised.

    >>> matching("v2", re.compile(r"v[0-9]+"), lambda: ValueError("not a version"))
    'v2'
    >>> matching(2, re.compile(r"v[0-9]+"), lambda: ValueError("not a version"))
    Traceback (most recent call last):
    ...
    ValueError: not a version
    """
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise error()
    return value
