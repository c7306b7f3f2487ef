"""``ctloop`` commands. Each command is a thin face over a library function."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ctloop._version import __version__
from ctloop.cli._common import JsonOpt, ParamOpt, command_group
from ctloop.errors import CtloopError

app = typer.Typer(
    name="ctloop",
    help="Continuous training and delivery of ML models: pipelines, lineage, data versions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: rendering it with Rich costs 0.25 s of imports
)
runs_app = command_group("List and inspect pipeline runs.")
artifacts_app = command_group("Inspect stored artifacts.")
data_app = command_group(
    "Version data sets like code (add, versions, get) and check their quality (stats, schema, validate, drift)."
)
app.add_typer(runs_app, name="runs")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(data_app, name="data")


RunIdArg = Annotated[str, typer.Argument(help="Run id, a unique prefix, or latest.")]


def _load(module: str) -> Any:
    """A command module, imported where it is registered (each keeps its imports lazy)."""
    import importlib

    return importlib.import_module(module)


app.add_typer(_load("ctloop.cli.models").models_app, name="models")


def _view(command: Callable[..., None]) -> Callable[..., None]:
    """A command whose arguments go, by name, to the function of the same name in
    :mod:`ctloop.cli.views` (imported when the command runs)."""

    @functools.wraps(command)
    def forward(**arguments: Any) -> None:
        from ctloop.cli import views

        getattr(views, command.__name__)(**arguments)

    return forward


def _version(value: bool) -> None:
    if value:
        print(f"ctloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """ctloop: continuous training and delivery of machine-learning models."""


def run_app() -> None:
    """Run the app, turning ctloop errors into one red sentence and an exit code.

    SIGTERM is handled like Ctrl-C, so a run stopped by a supervisor is recorded as
    failed (and resumable) rather than left to stale-heartbeat detection.
    """
    import signal

    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()  # usage errors, --help and Ctrl-C (exit 130) are handled by Typer itself
    except CtloopError as exc:
        from rich.markup import escape

        from ctloop.cli.output import err_console

        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


# -- run / resume --------------------------------------------------------------------
@app.command()
def run(
    reference: Annotated[str, typer.Argument(help="path/to/file.py:PIPELINE or module:PIPELINE")],
    param: ParamOpt = None,
    executor: Annotated[
        str | None, typer.Option(help="local (in-process), process (parallel workers) or ray.")
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Re-run every step.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a pipeline with live progress per step."""
    from ctloop.pipeline._loading import load_pipeline
    from ctloop.pipeline._params import parse_cli_params
    from ctloop.pipeline._runner import run_pipeline

    pipeline_obj, canonical = load_pipeline(reference)
    params = parse_cli_params(pipeline_obj.fn, param or [], f"pipeline '{pipeline_obj.name}'")
    listener = None if as_json else _progress()
    try:
        result = run_pipeline(
            pipeline_obj,
            params,
            executor=executor,
            cache=not no_cache,
            listener=listener,
            reference=canonical,
        )
    except CtloopError as exc:
        _report_failure(exc, as_json)
        raise
    _report_result(result, as_json)


@app.command()
def resume(
    run_id: RunIdArg,
    executor: Annotated[str | None, typer.Option(help="local, process or ray.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue a failed or interrupted run: re-run only what did not succeed."""
    from ctloop.pipeline._runner import resume_run

    listener = None if as_json else _progress()
    try:
        result = resume_run(run_id, executor=executor, listener=listener)
    except CtloopError as exc:
        _report_failure(exc, as_json)
        raise
    _report_result(result, as_json)


def _progress() -> Any:
    from ctloop.cli.progress import RichRunProgress

    return RichRunProgress()


def _report_result(result: Any, as_json: bool) -> None:
    if as_json:
        from ctloop.cli.output import emit_json

        emit_json({"run_id": result.run_id, "status": result.status, "steps": result.step_status})


def _report_failure(exc: CtloopError, as_json: bool) -> None:
    result = getattr(exc, "result", None)
    if as_json and result is not None:
        from ctloop.cli.output import emit_json

        emit_json(
            {
                "run_id": result.run_id,
                "status": result.status,
                "steps": result.step_status,
                "error": str(exc),
            }
        )
    trace = getattr(exc, "traceback_text", "")
    if trace and not as_json:
        from ctloop.cli.output import err_console

        err_console.print(trace.rstrip(), markup=False, highlight=False)


# -- runs ----------------------------------------------------------------------------
@runs_app.command("list")
@_view
def runs_list(
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    status: Annotated[str | None, typer.Option(help="running, succeeded or failed.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first."""


@runs_app.command("show")
@_view
def runs_show(
    run_id: RunIdArg,
    as_json: JsonOpt = False,
) -> None:
    """Show a run: parameters, steps, artifacts, metrics."""


@runs_app.command("logs")
@_view
def runs_logs(
    run_id: RunIdArg,
    step: Annotated[str, typer.Argument(help="Step name as shown by `ctloop runs show`.")],
    as_json: JsonOpt = False,
) -> None:
    """Print the captured output (stdout, stderr, logging) of one step."""


# -- lineage / artifacts ---------------------------------------------------------------
@app.command()
@_view
def lineage(
    identifier: Annotated[str, typer.Argument(help="Artifact id, run id, or data NAME@VERSION.")],
    as_json: JsonOpt = False,
) -> None:
    """Trace an artifact (or every output of a run) back to its data, code and parameters."""


@artifacts_app.command("show")
@_view
def artifact_show(
    artifact_id: Annotated[str, typer.Argument(help="Artifact id (or a unique prefix).")],
    as_json: JsonOpt = False,
) -> None:
    """Show an artifact: type, digest, files, properties, who made and used it."""


# -- data versions ---------------------------------------------------------------------
@data_app.command("add")
@_view
def data_add(
    name: Annotated[str, typer.Argument(help="Data set name, e.g. flights.")],
    path: Annotated[Path, typer.Argument(help="File or folder to snapshot.")],
    message: Annotated[str, typer.Option("-m", "--message", help="What changed.")] = "",
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links", help="Store what links out of the folder point to (else refused)."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Snapshot a file or folder as the next version of NAME (unchanged files stored once)."""


@data_app.command("versions")
@_view
def data_versions(
    name: Annotated[str | None, typer.Argument(help="Data set name (all when omitted).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List versions of a data set."""


@data_app.command("get")
@_view
def data_get(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    dest: Annotated[Path, typer.Argument(help="Folder to write the files into.")],
    as_json: JsonOpt = False,
) -> None:
    """Write a data version's files into a folder."""


HtmlOpt = Annotated[
    Path | None, typer.Option("--html", help="Also write an HTML report to this file.")
]


@data_app.command("stats")
def data_stats(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file.")],
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Summarise every column of a file: type, missing values, range, top values."""
    from ctloop.cli import data_quality

    data_quality.data_stats(path, as_json=as_json, html=html)


@data_app.command("schema")
def data_schema(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file to infer the schema from.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the YAML schema to this file.")
    ] = None,
    environment: Annotated[
        list[str] | None,
        typer.Option(
            "--environment",
            help="Columns absent in an environment, e.g. serving=arr_delay (repeatable).",
        ),
    ] = None,
    max_domain_size: Annotated[
        int, typer.Option(help="Give text columns with at most this many values a domain.")
    ] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Infer a schema (types, ranges, domains) to review, edit and validate against."""
    from ctloop.cli import data_quality

    data_quality.data_schema(
        path,
        output=output,
        environments=environment or [],
        max_domain_size=max_domain_size,
        as_json=as_json,
    )


@data_app.command("validate")
def data_validate(
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file to check.")],
    schema: Annotated[Path, typer.Option("--schema", help="Schema YAML file.")],
    environment: Annotated[
        str | None, typer.Option(help="Environment the data comes from, e.g. serving.")
    ] = None,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Check a file against a schema; exit with status 1 when it breaks the schema."""
    from ctloop.cli import data_quality

    data_quality.data_validate(
        path, schema_path=schema, environment=environment, as_json=as_json, html=html
    )


@data_app.command("drift")
def data_drift(
    reference: Annotated[Path, typer.Argument(help="CSV or Parquet file to compare against.")],
    current: Annotated[Path, typer.Argument(help="CSV or Parquet file to test.")],
    drift_share: Annotated[
        float, typer.Option(help="Share of drifted columns that makes the data set drifted.")
    ] = 0.5,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit with status 1 when the data drifted.")
    ] = False,
    as_json: JsonOpt = False,
    html: HtmlOpt = None,
) -> None:
    """Test each shared column of CURRENT for drift against REFERENCE."""
    from ctloop.cli import data_quality

    data_quality.data_drift(
        reference,
        current,
        drift_share=drift_share,
        fail_on_drift=fail_on_drift,
        as_json=as_json,
        html=html,
    )


# -- gc --------------------------------------------------------------------------------
@app.command()
@_view
def gc(
    older_than: Annotated[
        str | None, typer.Option(help="Delete runs started longer ago than this (30d, 12h, 90m).")
    ] = None,
    keep_last: Annotated[
        int | None, typer.Option(help="Keep the N newest runs of each pipeline.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report only; delete nothing.")
    ] = False,
    grace: Annotated[
        str, typer.Option(help="Leave unreferenced blobs younger than this (in-flight writes).")
    ] = "1h",
    as_json: JsonOpt = False,
) -> None:
    """Delete old runs and every artifact and blob nothing kept refers to."""


_load("ctloop.cli.compare").register(runs_app)
app.command("loadtest")(_load("ctloop.cli.loadtest").loadtest)
_deploy = _load("ctloop.cli.deploy")
app.command("deploy")(_deploy.deploy)
app.add_typer(_deploy.deployments_app, name="deployments")
app.add_typer(_deploy.feedback_app, name="feedback")
app.command("serve")(_load("ctloop.cli.serve").serve)
app.add_typer(_load("ctloop.cli.monitor").monitor_app, name="monitor")
app.add_typer(_load("ctloop.cli.monitor").alerts_app, name="alerts")
app.command("scheduler")(_load("ctloop.cli.scheduler").scheduler)
app.add_typer(_load("ctloop.cli.scheduler").triggers_app, name="triggers")
app.add_typer(_load("ctloop.cli.server").server_app, name="server")
app.add_typer(_load("ctloop.cli.keys").keys_app, name="keys")
app.add_typer(_load("ctloop.cli.features").features_app, name="features")
app.command("init")(_load("ctloop.cli.init").init)
app.command("ci")(_load("ctloop.cli.ci").ci)
app.add_typer(_load("ctloop.cli.env").env_app, name="env")
app.command("bundle")(_load("ctloop.cli.bundle").bundle)
app.add_typer(_load("ctloop.cli.ingest").ingest_app, name="ingest")
app.command("backtest")(_load("ctloop.cli.backtest").backtest)
app.command("replay")(_load("ctloop.cli.replay").replay)
_load("ctloop.cli.predict").register(app)  # predict (batch), models compile
app.command("demo")(_load("ctloop.cli.demo").demo)
