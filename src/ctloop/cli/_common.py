"""What the command groups share: the ``--json`` option and printing that loads Rich
only when a command prints (``ctloop --help`` stays fast)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
ParamOpt = Annotated[
    list[str] | None, typer.Option("-p", "--param", help="Pipeline parameter key=value.")
]


def command_group(help: str) -> typer.Typer:
    """A group of subcommands (``ctloop runs``, ``ctloop models``, ...): it prints its
    help when called without a command, as plain text (no Rich import)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)


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


def show_list(
    records: Sequence[Any],
    as_json: bool,
    as_dict: Callable[[Any], Any],
    empty: str,
    table: Callable[[], Any],
) -> None:
    """What a list command prints: with ``--json`` the list of ``as_dict`` of each record,
    else ``empty`` when there is no record, or the Rich table that ``table()`` builds."""
    if as_json:
        emit([as_dict(r) for r in records])
    else:
        show(table() if records else empty)
