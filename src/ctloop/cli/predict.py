"""``ctloop predict`` (batch prediction) and ``ctloop models compile`` (ONNX).

    ctloop predict flights@champion --input flights.parquet --output preds.parquet \\
        --id-column flight_id --keep carrier
    ctloop predict flights@champion --input new.csv --output preds.parquet --record
    ctloop models compile flights@3 --validation valid.parquet --tolerance 1e-4

``predict`` streams the input in chunks with a progress bar and writes the output
atomically. With ``--record`` it runs as the one-step pipeline ``batch_scoring`` instead:
the run, the model version (tags ``model_version``, ``model_artifact_id``) and the output
file (a ``Files`` artifact) are recorded in the metadata store, so ``ctloop runs show``
and lineage find them; the output is then also kept in the artifact store.

``models compile`` converts a registered version to ONNX and checks it on the validation
rows; when accepted it registers a NEW version (the original estimator stays inside as
the fallback) tagged ``compiled_from``, ``runtime=onnx`` and ``onnx_max_abs_diff``, and
moves no alias: promote it with ``ctloop models alias`` when you want it served.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctloop.pipeline import FilePath, pipeline

if TYPE_CHECKING:
    from ctloop.artifacts.model import BatchResult
    from ctloop.artifacts.model_versions import LoadedVersion
    from ctloop.config import Settings
    from ctloop.store.workspace import Workspace

ModelArg = Annotated[str, typer.Argument(help="Registered model: NAME@ALIAS, NAME@N or NAME.")]


@pipeline
def batch_scoring(
    model: str,
    input: FilePath,
    output: str,
    id_column: str | None = None,
    keep: list[str] | None = None,
    chunk_rows: int = 100_000,
) -> None:
    """Score ``input`` with the registered ``model`` into ``output`` (``ctloop predict
    --record``)."""
    from ctloop.components import batch_predict

    batch_predict(
        model,
        str(input),
        id_column=id_column,
        keep=keep,
        chunk_rows=chunk_rows,
        output_path=output,
    )


def predict(
    model: ModelArg,
    input: Annotated[Path, typer.Option("--input", "-i", help="Parquet file or folder, or CSV.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Parquet (or .csv) to write.")],
    id_column: Annotated[
        str | None, typer.Option(help="Column copied to the output to join predictions back.")
    ] = None,
    keep: Annotated[
        list[str] | None, typer.Option("--keep", help="Another column to copy (repeatable).")
    ] = None,
    chunk_rows: Annotated[int, typer.Option(help="Rows per chunk (bounds memory).")] = 100_000,
    runtime: Annotated[
        str, typer.Option(help="auto (ONNX when the version is compiled), native or onnx.")
    ] = "auto",
    record: Annotated[
        bool, typer.Option(help="Run as a recorded pipeline (lineage), not plain streaming.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Score a Parquet or CSV file with a registered model, in bounded memory."""
    if record:
        _predict_recorded(model, input, output, id_column, keep or [], chunk_rows, as_json)
        return
    found = _load_registered(model)
    loaded, version = found.model, found.reference
    _choose_runtime(loaded, runtime, model)
    result = _predict_with_progress(
        loaded, input, output, id_column, keep or [], chunk_rows, version
    )
    _report(result.to_dict(), as_json)


def _settings_and_workspace() -> tuple[Settings, Workspace]:
    from ctloop.config import Settings
    from ctloop.store.workspace import Workspace

    settings = Settings.load()
    return settings, Workspace.from_settings(settings)


def _load_registered(reference: str) -> LoadedVersion:
    """The version ``reference`` (``NAME@ALIAS``, ``NAME@N``, ``NAME``) names, loaded."""
    from ctloop.artifacts.model_versions import load_version

    settings, workspace = _settings_and_workspace()
    return load_version(workspace, reference, cache_dir=settings.home / "cache")


def _choose_runtime(model: Any, runtime: str, reference: str) -> None:
    from ctloop.errors import BatchPredictionError

    if runtime not in ("auto", "native", "onnx"):
        raise BatchPredictionError(f"--runtime {runtime!r} is not auto, native or onnx")
    if runtime == "onnx" and model.compiled is None:
        raise BatchPredictionError(
            f"{reference} has no compiled ONNX form; make one with `ctloop models compile "
            f"{reference} --validation DATA` or use --runtime native"
        )
    model.use_compiled = runtime != "native"


def _predict_with_progress(
    model: Any,
    input: Path,
    output: Path,
    id_column: str | None,
    keep: list[str],
    chunk_rows: int,
    version: str,
) -> BatchResult:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from ctloop.artifacts.model import predict_file
    from ctloop.cli.output import err_console

    total = _total_rows(input, chunk_rows)
    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"scoring with {version}", total=total)
        return predict_file(
            model,
            input,
            output,
            id_column=id_column,
            keep=keep,
            chunk_rows=chunk_rows,
            model_version=version,
            progress=lambda rows: bar.advance(task, rows),
        )


def _total_rows(path: Path, chunk_rows: int) -> int | None:
    from ctloop.artifacts.model import BatchSource

    try:
        return BatchSource(path, [], chunk_rows=chunk_rows).total_rows
    except Exception:  # predict_file reports an unreadable input with the full story
        return None


def _predict_recorded(
    model: str,
    input: Path,
    output: Path,
    id_column: str | None,
    keep: list[str],
    chunk_rows: int,
    as_json: bool,
) -> None:
    from ctloop.errors import BatchPredictionError

    if not input.exists():
        raise BatchPredictionError(f"input {input} does not exist; pass a Parquet or CSV file")
    result = batch_scoring.run(
        model=model,
        input=FilePath(input.resolve()),
        output=str(output.resolve()),
        id_column=id_column,
        keep=keep,
        chunk_rows=chunk_rows,
    )
    artifact = next(iter(result.outputs.get("batch_predict", {}).values()), None)
    _report(
        {
            "output": str(output),
            "run_id": result.run_id,
            "status": result.status,
            "artifact_id": artifact.id if artifact else None,
        },
        as_json,
    )


def models_compile(
    model: ModelArg,
    validation: Annotated[
        Path, typer.Option(help="Parquet or CSV with the model's input columns.")
    ],
    tolerance: Annotated[
        float, typer.Option(help="Largest accepted absolute difference of the outputs.")
    ] = 1e-4,
    rows: Annotated[
        int, typer.Option(help="Validation rows to compare on (the first N).")
    ] = 100_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Compile a version to ONNX; register it as a new version when it matches."""
    from ctloop.artifacts.model._onnx import compile_onnx

    found = _load_registered(model)
    loaded, version = found.model, found.reference
    result = compile_onnx(loaded, _read_rows(validation, loaded, rows), tolerance=tolerance)
    report: dict[str, Any] = {"model": version, **result.to_dict(), "new_version": None}
    if result.accepted:
        report["new_version"] = _register_compiled(loaded, version, result.max_abs_diff)
    _report(report, as_json)
    if not result.accepted:
        raise typer.Exit(1)


def _read_rows(path: Path, model: Any, rows: int) -> Any:
    import pyarrow as pa

    from ctloop.artifacts.model import open_batch_source, to_model_frame

    source = open_batch_source(model, path, [], chunk_rows=min(rows, 100_000))
    batches, count = [], 0
    for batch in source.batches():
        batches.append(batch.slice(0, rows - count))
        count += batches[-1].num_rows
        if count >= rows:
            break
    table = pa.Table.from_batches(batches).combine_chunks()
    return to_model_frame(model, table.to_batches()[0]) if table.num_rows else table.to_pandas()


def _register_compiled(model: Any, version: str, diff: float | None) -> str:
    from ctloop.artifacts import save_value

    settings, workspace = _settings_and_workspace()
    record = save_value(model, workspace.artifacts, staging_root=settings.home / "tmp")
    workspace.metadata.put_artifacts([record])
    registry = workspace.registry
    name, _, number = version.partition("@")
    source = registry.get_version(name, int(number))
    tags = {"compiled_from": version, "runtime": "onnx", "onnx_max_abs_diff": f"{diff:.3g}"}
    created = registry.register_version(
        name,
        record.id,
        run_id=source.run_id,
        execution_id=source.execution_id,
        description=f"{version} compiled to ONNX (max abs diff {diff:.3g})",
        tags=tags,
    )
    return f"{created.model}@{created.version}"


def _report(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data))
        return
    from ctloop.cli.output import console

    for key, value in data.items():
        console.print(f"{key}: {value}", soft_wrap=True, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``predict`` to ``app`` and ``compile`` to ``ctloop models``."""
    from ctloop.cli.models import models_app

    app.command("predict")(predict)
    models_app.command("compile")(models_compile)
