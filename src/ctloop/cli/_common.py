"""What the command groups share: the ``--json`` option and printing that loads Rich
only when a command prints (``ctloop --help`` stays fast)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def emit(value: Any) -> None:
    """Write ``value`` as one JSON document to stdout."""
    from ctloop.cli.output import emit_json

    emit_json(value)


def show(renderable: Any) -> None:
    """Print a Rich renderable (a table, styled text) to stdout."""
    from ctloop.cli.output import console

    console.print(renderable)


def say(text: str) -> None:
    """Print ``text`` as it is: no markup, no highlighting, long lines kept whole."""
    from ctloop.cli.output import console

    console.print(text, markup=False, highlight=False, soft_wrap=True)
