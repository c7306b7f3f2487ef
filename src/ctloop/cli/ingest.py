"""``ctloop ingest``: the sources declared in ``ctloop.yaml``, span by span, into
versioned data sets.

    ctloop ingest run [SOURCE…] [--json]          # new spans and late changes
    ctloop ingest status [--json]                 # watermark, pending and missing spans
    ctloop ingest backfill flights --from 2013-03-01 --to 2013-03-31

``run`` and ``backfill`` exit with 1 after ingesting what they could when a source that
expects every span (``expect: daily``) has a gap, or a span's file is damaged or breaks
the source's columns, naming the spans and files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctloop.cli._common import JsonOpt, command_group

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.ingest import AnySource, IngestResult

ingest_app = command_group(
    "Ingest the sources of ctloop.yaml span by span into versioned data sets."
)


@ingest_app.command("run")
def run(
    sources: Annotated[
        list[str] | None, typer.Argument(help="Sources to ingest (default: every source).")
    ] = None,
    accept_schema: Annotated[
        bool, typer.Option("--accept-schema", help="Take new spans' columns as the schema.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest new spans, and spans changed within their late window, of each source."""
    settings, specs = _sources(sources)
    _report([_ingest(settings, s, accept_schema=accept_schema) for s in specs], as_json)


@ingest_app.command("backfill")
def backfill(
    source: Annotated[str, typer.Argument(help="The source to backfill.")],
    start: Annotated[str, typer.Option("--from", help="First span, e.g. 2013-03-01.")],
    end: Annotated[str, typer.Option("--to", help="Last span, e.g. 2013-03-31.")],
    as_json: JsonOpt = False,
) -> None:
    """Ingest SOURCE's spans from --from to --to, looking again at those already there."""
    from ctloop.errors import ConfigError
    from ctloop.ingest._spans import parse_span

    settings, (spec,) = _sources([source])
    first = parse_span(spec.grain, start, "--from")
    last = parse_span(spec.grain, end, "--to")
    if first > last:
        raise ConfigError(f"--from {start} is after --to {end}; swap them")
    _report([_ingest(settings, spec, start=first, end=last)], as_json)


@ingest_app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Per source: its data set's version, watermark, spans pending and missing."""
    from ctloop.cli.workspace import open_workspace
    from ctloop.ingest import source_status

    settings, specs = _sources(None)
    with open_workspace(settings) as workspace:
        found = [source_status(workspace, spec) for spec in specs]
    if as_json:
        from dataclasses import asdict

        from ctloop.cli.output import emit_json

        emit_json([asdict(s) for s in found])
        return
    for s in found:
        version = f"version {s.version}" if s.version else "not ingested yet"
        typer.echo(
            f"{s.source}: {version}, {s.spans} span(s), watermark {s.watermark or '-'}, "
            f"{len(s.pending)} pending, {len(s.missing)} missing"
            + (f" ({', '.join(s.missing[:10])})" if s.missing else "")
            + (
                f", late re-ingests: {', '.join(f'{k} v{v}' for k, v in s.late.items())}"
                if s.late
                else ""
            )
        )


def _sources(names: list[str] | None) -> tuple[Settings, list[AnySource]]:
    from ctloop.config import Settings
    from ctloop.errors import ConfigError
    from ctloop.ingest import parse_sources

    settings = Settings.load()
    declared = parse_sources(settings.sources, settings.root)
    if not declared:
        raise ConfigError(
            f"{settings.root / 'ctloop.yaml'} declares no sources; add one under 'sources:' "
            "(see `ctloop ingest --help` and docs/ingestion.md)"
        )
    unknown = [n for n in names or [] if n not in declared]
    if unknown:
        raise ConfigError(
            f"no source named {', '.join(map(repr, unknown))} in ctloop.yaml; "
            f"declared: {', '.join(declared)}"
        )
    return settings, [declared[n] for n in (names or declared)]


def _ingest(settings: Settings, spec: AnySource, **bounds: Any) -> IngestResult:
    from ctloop.cli.workspace import open_workspace
    from ctloop.ingest import ingest_source

    with open_workspace(settings) as workspace:
        return ingest_source(workspace, spec, staging_root=settings.home / "tmp", **bounds)


def _report(results: list[IngestResult], as_json: bool) -> None:
    if as_json:
        from dataclasses import asdict

        from ctloop.cli.output import emit_json

        emit_json([asdict(r) for r in results])
    else:
        for result in results:
            typer.echo(result.summary())
    gaps = [r for r in results if r.missing]
    for result in gaps:
        shown = ", ".join(result.missing[:10]) + (" …" if len(result.missing) > 10 else "")
        typer.echo(
            f"error: source {result.source!r} expects every span but {len(result.missing)} "
            f"are missing: {shown}; land their files and run `ctloop ingest backfill "
            f"{result.source} --from … --to …`",
            err=True,
        )
    failed = [(r.source, span, why) for r in results for span, why in r.failed.items()]
    for source, span, why in failed:
        typer.echo(f"error: source {source!r}, span {span} was not ingested: {why}", err=True)
    if gaps or failed:
        raise typer.Exit(1)
