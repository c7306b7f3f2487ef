"""``ctloop features``: feature store definitions applied from a Python file, versioned
in the workspace's metadata store, listed and shown.

    ctloop features apply features.py     # checks every view against its source first
    ctloop features list [--json]
    ctloop features show weather_hourly [--version 2] [--kind feature_view]
    ctloop features materialize [VIEW…] (--start 2024-01-01 --end 2024-02-01 | --incremental)
    ctloop features get --entity origin=EWR --entity origin=JFK weather_hourly:temp
    ctloop features get --entity origin=EWR,sched_dep_time=700 --service flights_v1
    ctloop features skew flights_v1 [--sample 100]   # offline against online values
    ctloop features serve --port 6566 [--service flights_v1] [--auth]
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ctloop.cli._common import JsonOpt, command_group

features_app = command_group(
    "The feature store: apply definitions from a Python file, list them, show one."
)


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
    from ctloop.store._features import DefinitionDraft
    from ctloop.store._operations import current_user

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


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date or time; give one such as 2024-01-31 or "
            "2024-01-31T06:00:00+00:00 (no zone: UTC)",
            param_hint=option,
        ) from None


@features_app.command("materialize")
def materialize(
    views: Annotated[
        list[str] | None, typer.Argument(help="Feature views (default: every applied one).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First event time to read (default: the first row).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Last event time to read (default: now).")] = None,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Start at each view's watermark.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the latest value per entity key of each view into the online store, from
    --start to --end, or with --incremental from where the last run ended."""
    from ctloop.cli.output import emit_json
    from ctloop.cli.workspace import open_workspace
    from ctloop.features import materialize as run
    from ctloop.features import materialize_incremental
    from ctloop.store._operations import current_user

    if incremental and start is not None:
        raise typer.BadParameter(
            "--incremental starts at each view's watermark; drop --start or --incremental",
            param_hint="--start",
        )
    workspace = open_workspace()
    end_at, by = _when(end, "--end"), current_user()
    if incremental:
        records = materialize_incremental(workspace, views or None, end_at, by=by)
    else:
        records = run(workspace, views or None, _when(start, "--start"), end_at, by=by)
    if as_json:
        emit_json(records)
        return
    for r in records:
        since = "the first row" if r.start is None else r.start.isoformat()
        typer.echo(
            f"{r.view}: {r.rows_read} keys read, {r.rows_written} written "
            f"({since} to {r.end.isoformat()})"
        )


def _entity_row(text: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(
                f"{text!r} is not a list of column=value pairs; give one such as "
                "origin=EWR or origin=EWR,dest=ORD",
                param_hint="--entity",
            )
        # text as typed: keys match as text, request fields are parsed to their types
        row[name.strip()] = value.strip()
    return row


@features_app.command("get")
def get(
    features: Annotated[
        list[str] | None, typer.Argument(help="Features as view:feature (or a view's name).")
    ] = None,
    entity: Annotated[
        list[str] | None,
        typer.Option(help="One entity row, column=value[,column=value…]; repeat for more."),
    ] = None,
    service: Annotated[
        str | None, typer.Option(help="A feature service instead of FEATURES.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Read online features of some entity rows: the latest materialized values, None
    for keys with none (or older than the view's ttl)."""
    if bool(features) == bool(service):
        raise typer.BadParameter(
            "give either FEATURES (view:feature …) or --service NAME", param_hint="FEATURES"
        )
    if not entity:
        raise typer.BadParameter("give at least one --entity column=value", param_hint="--entity")
    from ctloop.cli.output import console, emit_json
    from ctloop.cli.workspace import open_workspace
    from ctloop.features import get_online_features

    rows = [_entity_row(text) for text in entity]
    columns = get_online_features(open_workspace(), service or features or [], rows)
    if as_json:
        emit_json(columns)
        return
    from rich.table import Table

    table = Table(*columns)
    for i in range(len(rows)):
        table.add_row(*("" if v[i] is None else str(v[i]) for v in columns.values()))
    console.print(table)


@features_app.command("skew")
def skew(
    service: Annotated[str, typer.Argument(help="An applied feature service.")],
    sample: Annotated[int, typer.Option(help="Keys to sample from each view's source.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Compare each feature's offline (historical) value at its view's watermark with
    its online value for a sample of keys; exit code 1 when any differs."""
    if sample < 1:
        raise typer.BadParameter(
            f"{sample} keys is not a sample; give 1 or more", param_hint="--sample"
        )
    from ctloop.cli.output import console, emit_json
    from ctloop.cli.workspace import open_workspace
    from ctloop.features import feature_skew

    report = feature_skew(open_workspace(), service, sample=sample, seed=seed)
    if as_json:
        emit_json(report.to_dict())
    else:
        from rich.table import Table

        table = Table("view", "feature", "keys", "mismatches", "share")
        for f in report.features:
            table.add_row(f.view, f.feature, str(f.compared), str(f.mismatches), f"{f.share:.1%}")
        console.print(table)
    if not report.passed:
        raise typer.Exit(1)


@features_app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 6566,
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes the server to the network.")
    ] = "127.0.0.1",
    service: Annotated[
        str | None,
        typer.Option(help="Serve this feature service only (requests may then name none)."),
    ] = None,
    auth: Annotated[
        bool,
        typer.Option(
            "--auth",
            help="Require the workspace's API keys (as `ctloop serve --auth`): a viewer key "
            "to read features; /health and /metrics stay open.",
        ),
    ] = False,
    threads: Annotated[int, typer.Option(help="Threads reading the online store.")] = 4,
) -> None:
    """Serve online features over HTTP: POST /get-online-features (Feast's protocol),
    POST /features (rows in, rows out), GET /health, GET /metrics."""
    from ctloop.cli.output import err_console
    from ctloop.cli.serve import is_loopback, warn_without_keys
    from ctloop.cli.workspace import open_workspace
    from ctloop.serve._feature_server import create_feature_app, serve_features

    if threads < 1:
        raise typer.BadParameter(
            f"{threads} threads cannot read; give 1 or more", param_hint="--threads"
        )
    workspace = open_workspace()
    if service is not None:
        from ctloop.features._stored import select_features

        select_features(workspace, service)  # an unknown service stops here, named
    if auth:
        warn_without_keys(workspace)
    elif not is_loopback(host):
        err_console.print(
            f"[bold yellow]warning:[/] the feature server will listen on {host}:{port} with no "
            "authentication: anyone who can reach that port can read the online features; "
            "start it with --auth (API keys from `ctloop keys create`) or bind 127.0.0.1",
            soft_wrap=True,
            highlight=False,
        )
    app = create_feature_app(workspace, service=service, auth=auth, threads=threads)
    serve_features(app, host=host, port=port)
