"""The failure every ``ctloop.testing`` check raises: an ``AssertionError`` that pytest
shows as it is, naming the check, the rows or feature, and the numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["CheckFailed", "describe_rows"]


class CheckFailed(AssertionError):
    """A check that did not hold; ``check`` names it and ``str()`` says why.

    >>> str(CheckFailed("no_nan", "2 of 10 predictions are NaN (rows 3, 7)"))
    'check no_nan failed: 2 of 10 predictions are NaN (rows 3, 7)'
    """

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"check {check} failed: {detail}")
        self.check = check
        self.detail = detail


def describe_rows(rows: Sequence[Any], limit: int = 5) -> str:
    """``rows 3, 7, 9`` (the first ``limit`` of them, then how many more).

    >>> describe_rows([1, 2, 3, 4, 5, 6, 7], limit=3)
    'rows 1, 2, 3 and 4 more'
    """
    shown = ", ".join(str(row) for row in list(rows)[:limit])
    more = len(rows) - limit
    word = "row" if len(rows) == 1 else "rows"
    return f"{word} {shown}" + (f" and {more} more" if more > 0 else "")
