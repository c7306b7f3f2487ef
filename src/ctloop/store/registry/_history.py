"""Alias history as an undo stack: which move a rollback undoes.

``set`` and ``delete`` moves push onto the stack, a ``rollback`` pops the move it undid.
The move on top is the one the next rollback undoes.

>>> from ctloop.store.registry._records import AliasMove, utcnow
>>> def move(kind, old, new):
...     return AliasMove(0, "m", "champion", kind, old, new, utcnow(), "ada", "")
>>> moves = [move("set", None, 1), move("set", 1, 2), move("set", 2, 3), move("rollback", 3, 2)]
>>> undo_target(moves).to_version   # the next rollback undoes 1 → 2
2
"""

from __future__ import annotations

from collections.abc import Iterable

from ctloop.store.registry._records import AliasMove

__all__ = ["undo_target"]


def undo_target(moves: Iterable[AliasMove]) -> AliasMove | None:
    """The latest move of one alias that no rollback has undone yet (``None``: none).

    ``moves`` are the alias's history, oldest first.
    """
    stack: list[AliasMove] = []
    for move in moves:
        if move.kind == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(move)
    return stack[-1] if stack else None
