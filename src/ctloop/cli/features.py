"""``ctloop features``: feature store definitions applied from a Python file, versioned
in the workspace's metadata store, listed and shown.

    ctloop features apply features.py     # checks every view against its source first
    ctloop features list [--json]
    ctloop features show weather_hourly [--version 2] [--kind feature_view]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

features_app = typer.Typer(
    help="The feature store: apply definitions from a Python file, list them, show one.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@features_app.command("apply")
def apply(
    file: Annotated[Path, typer.Argument(help="Python file that defines the features.")],
    as_json: JsonOpt = False,
) -> None:
    """Check the definitions in FILE against their sources, then record a new version
    of each one that changed (all or nothing)."""
    import duckdb

    from ctloop.cli.output import emit_json
    from ctloop.cli.workspace import open_workspace
    from ctloop.features._repo import load_definitions
    from ctloop.features._sources import check_source
    from ctloop.store.features import DefinitionDraft
    from ctloop.store.operations import current_user

    repo = load_definitions(file)
    with duckdb.connect() as con:
        for view in repo.views():
            check_source(view, con)
    drafts = [DefinitionDraft(kind, name, spec) for kind, name, spec in repo.specs()]
    made = open_workspace().features.apply(drafts, applied_by=current_user())
    if as_json:
        emit_json(made)
        return
    for record in made:
        typer.echo(f"{record.kind.replace('_', ' ')} {record.name}: version {record.version}")
    typer.echo(f"{len(made)} of {len(drafts)} definitions changed", err=True)


@features_app.command("list")
def list_definitions(as_json: JsonOpt = False) -> None:
    """The latest version of every definition: kind, name, version, when and by whom."""
    from ctloop.cli.output import console, emit_json, when
    from ctloop.cli.workspace import open_workspace

    records = open_workspace().features.list()
    if as_json:
        emit_json(records)
        return
    from rich.table import Table

    table = Table("kind", "name", "version", "applied", "by")
    for record in records:
        table.add_row(
            record.kind,
            record.name,
            str(record.version),
            when(record.applied_at),
            record.applied_by,
        )
    console.print(table)


@features_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Name of an entity, view or service.")],
    version: Annotated[int | None, typer.Option(help="A version (default: the latest).")] = None,
    kind: Annotated[
        str | None, typer.Option(help="entity, feature_view, on_demand or feature_service.")
    ] = None,
) -> None:
    """One definition's spec as JSON, with its kind, version and digest."""
    from ctloop.cli.output import emit_json
    from ctloop.cli.workspace import open_workspace

    emit_json(open_workspace().features.get(name, version=version, kind=kind))
