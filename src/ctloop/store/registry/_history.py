"""Alias history as an undo stack: which move a rollback undoes.

``set`` and ``delete`` moves push onto the stack, a ``rollback`` pops the move it undid.
The move on top is the one the next rollback undoes.

>>> from ctloop.store.registry._records import utcnow
>>> from ctloop.store.registry import AliasMove
>>> def move(kind, old, new):
...     return AliasMove(0, "m", "champion", kind, old, new, utcnow(), "ada", "")
>>> moves = [move("set", None, 1), move("set", 1, 2), move("set", 2, 3), move("rollback", 3, 2)]
>>> undo_target(moves).to_version   # the next rollback undoes 1 → 2
2
"""

from __future__ import annotations

from collections.abc import Iterable

from ctloop.errors import RollbackError
from ctloop.store.registry._records import AliasMove

__all__ = ["rollback_target", "undo_target"]


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


def rollback_target(model: str, alias: str, moves: Iterable[AliasMove]) -> int:
    """The version a rollback of ``alias`` moves it to: the one it held before the move
    :func:`undo_target` names. :class:`~ctloop.errors.RollbackError` when every move is
    undone already, or when that move created the alias (it would be left empty)."""
    undone = undo_target(moves)
    if undone is None:
        raise RollbackError(
            f"alias {alias!r} of model {model!r} has no move to roll back; see "
            f"`ctloop models history {model} --alias {alias}`"
        )
    if undone.from_version is None:
        raise RollbackError(
            f"alias {alias!r} of model {model!r} had no holder before v{undone.to_version} "
            f"(it was created by move {undone.id}), so there is nothing to roll back to; "
            f"point it elsewhere with `ctloop models alias {model} {alias} VERSION`"
        )
    return undone.from_version
