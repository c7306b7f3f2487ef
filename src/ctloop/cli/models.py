"""``ctloop models``: the model registry from the command line.

    ctloop models register flights 3f9c2a1b --description "gradient boosting, 2024-06"
    ctloop models alias flights champion 3 --reason "AUC 0.91 > 0.89"
    ctloop models rollback flights          # champion back to the previous holder
    ctloop models history flights --json
    ctloop models card flights@3 --html card.html

Every command takes ``--json`` for scripts.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctloop.cli._common import JsonOpt, command_group, emit, show, show_list

if TYPE_CHECKING:
    from ctloop.registry import AliasMove, ModelRegistry, ModelVersion
    from ctloop.registry._card import ModelCard

models_app = command_group(
    "Registered models: versions, aliases (champion, challenger, …), history, rollback."
)

NameArg = Annotated[str, typer.Argument(help="Registered model name, e.g. flights.")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the history).")]


# printing goes through ctloop.cli.output, imported on use: it loads Rich
def _when(moment: datetime | None) -> str:
    from ctloop.cli.output import when

    return when(moment)


def _short(identifier: str | None) -> str:
    return (identifier or "")[:8]


def _registry() -> ModelRegistry:
    from ctloop.cli.workspace import open_workspace

    return open_workspace().registry


_NO_MODELS = "no models yet: register one with `ctloop models register NAME ARTIFACT_ID`"


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """List registered models with their latest version and aliases."""
    models = _registry().list_models()
    show_list(models, as_json, asdict, _NO_MODELS, lambda: _models_table(models))


def _models_table(models: list[Any]) -> Any:
    table = _table("model", "latest", "aliases", "updated", "description")
    for m in models:
        table.add_row(
            m.name,
            f"v{m.latest_version}" if m.latest_version else "-",
            _aliases(m.aliases),
            _when(m.updated_at),
            _text(m.description),
        )
    return table


@models_app.command("show")
def models_show(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show a model: description, tags, aliases and its versions."""
    registry = _registry()
    model = registry.get_model(name)
    versions = registry.list_versions(name)
    if as_json:
        emit({"model": asdict(model), "versions": [asdict(v) for v in versions]})
        return
    show(f"[bold]{model.name}[/] {_text(model.description)}".rstrip())
    show(f"created {_when(model.created_at)}, updated {_when(model.updated_at)}")
    show(f"aliases: {_aliases(model.aliases) or '-'}")
    show(f"tags: {_text(_tags(model.tags)) or '-'}")
    _print_versions(versions)


@models_app.command("versions")
def models_versions(name: NameArg, as_json: JsonOpt = False) -> None:
    """List the versions of a model, oldest first."""
    versions = _registry().list_versions(name)
    if as_json:
        emit([asdict(v) for v in versions])
        return
    _print_versions(versions)


@models_app.command("register")
def models_register(
    name: NameArg,
    artifact_id: Annotated[str, typer.Argument(help="Artifact id (or a unique prefix).")],
    run: Annotated[
        str | None, typer.Option("--run", help="Run that made it (default: from lineage).")
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d", help="What it is.")] = "",
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag key=value.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an artifact as the next version of NAME (the model is created if new)."""
    tags = _parse_tags(tag or [])
    version = _registry().register_version(
        name, artifact_id, run_id=run, description=description, tags=tags
    )
    if as_json:
        emit(asdict(version))
        return
    source = f" from run {_short(version.run_id)}" if version.run_id else ""
    show(
        f"registered [bold]{version.reference}[/] (artifact {_short(version.artifact_id)}{source})"
    )


@models_app.command("alias")
def models_alias(
    name: NameArg,
    alias: Annotated[str, typer.Argument(help="Alias, e.g. champion or challenger.")],
    version: Annotated[int | None, typer.Argument(help="Version number to point at.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Point ALIAS of NAME at VERSION (or remove it with --delete); the move is recorded."""
    registry = _registry()
    if delete == (version is not None):
        raise typer.BadParameter("give either VERSION or --delete", param_hint="VERSION")
    if version is None:
        move: AliasMove | None = registry.delete_alias(name, alias, reason=reason)
    else:
        move = registry.set_alias(name, alias, version, reason=reason)
    if as_json:
        emit({"moved": move is not None, "move": asdict(move) if move else None})
        return
    if move is None:
        show(f"{alias} of {name} already points at v{version}: nothing moved")
    else:
        show(_text(f"{name} {move.describe()}"))


@models_app.command("rollback")
def models_rollback(
    name: NameArg,
    alias: Annotated[str, typer.Option("--alias", "-a", help="Alias to move back.")] = "champion",
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Move an alias (champion by default) back to the version it held before its latest
    move; run it again to go one more step back."""
    move = _registry().rollback(name, alias, reason=reason)
    if as_json:
        emit(asdict(move))
        return
    show(_text(f"{name} {move.describe()}"))


@models_app.command("history")
def models_history(
    name: NameArg,
    alias: Annotated[str | None, typer.Option("--alias", "-a", help="Only this alias.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every move of the model's aliases, oldest first."""
    moves = _registry().alias_history(name, alias)
    if as_json:
        emit([asdict(m) for m in moves])
        return
    if not moves:
        show(f"no alias moves yet: set one with `ctloop models alias {name} champion 1`")
        return
    table = _table("#", "when", "alias", "from", "to", "kind", "by", "reason")
    for m in moves:
        table.add_row(
            str(m.id),
            _when(m.moved_at),
            m.alias,
            _version_label(m.from_version),
            _version_label(m.to_version),
            m.kind,
            _text(m.moved_by),
            _text(m.reason),
        )
    show(table)


@models_app.command("card")
def models_card(
    reference: Annotated[str, typer.Argument(help="NAME@VERSION, NAME@ALIAS or NAME (latest).")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the card as an HTML page here.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The model card of a version: lineage, parameters, metrics overall and by slice,
    feature importance and the gate's comparisons (Markdown on stdout)."""
    card = _card(reference)
    if html is not None:
        html.write_text(card.to_html(), encoding="utf-8")
    if as_json:
        emit(card.to_dict())
        return
    if html is not None:
        show(f"wrote {_text(str(html))}")
        return
    typer.echo(card.to_markdown(), nl=False)


def _card(reference: str) -> ModelCard:
    from ctloop.cli.workspace import open_workspace
    from ctloop.config import Settings
    from ctloop.registry._card import model_card

    settings = Settings.load()
    workspace = open_workspace(settings)
    return model_card(
        workspace.registry,
        workspace.metadata,
        workspace.artifacts,
        reference,
        cache_dir=settings.home / "cache",
    )


# -- printing helpers -----------------------------------------------------------------------
def _table(*columns: str) -> Any:
    from rich.table import Table

    table = Table(show_edge=False, box=None)
    for column in columns:
        table.add_column(column)
    return table


def _print_versions(versions: list[ModelVersion]) -> None:
    if not versions:
        show("no versions yet")
        return
    table = _table("version", "aliases", "artifact", "run", "created", "by", "description")
    for v in versions:
        table.add_row(
            f"v{v.version}",
            ", ".join(v.aliases),
            _short(v.artifact_id),
            _short(v.run_id) or "-",
            _when(v.created_at),
            _text(v.created_by),
            _text(v.description),
        )
    show(table)


def _text(value: str) -> str:
    """User text, shown as typed (square brackets are not Rich markup)."""
    from rich.markup import escape

    return escape(value)


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias}=v{version}" for alias, version in aliases.items())


def _tags(tags: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in tags.items())


def _version_label(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _parse_tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise typer.BadParameter(
                f"tag {pair!r} must be key=value, e.g. team=ml", param_hint="--tag"
            )
        tags[key] = value
    return tags
