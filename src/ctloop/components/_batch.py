"""The ``batch_predict`` step: score a table or file with a model, as a pipeline step.

The model is an upstream step's ``Model`` output (lineage then runs from the predictions
through this step to that very model artifact) or a registry reference such as
``"flights@champion"``, resolved in the run's workspace when the step runs (the execution is then tagged with
``model_version`` and ``model_artifact_id``, and the version's model artifact is recorded
as its input ``model``, so lineage reaches it either way). The data is an upstream table, a data
version (``data_version("flights")``, recorded as the step's input) or a file path::

    @pipeline
    def scoring(path: FilePath = FilePath("new_flights.parquet")):
        batch_predict("flights@champion", path, id_column="flight_id")

    @pipeline
    def train_and_score():
        model = train(load("train.parquet"))
        batch_predict(model, data_version("flights"), id_column="flight_id")

The output is a ``Files`` artifact: one Parquet file, ``predictions.parquet``, written in
bounded memory chunk by chunk (see :func:`ctloop.artifacts.model.predict_file`); it
loads back as a path.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ctloop.artifacts.model import Model, predict_file
from ctloop.artifacts.model_versions import load_version
from ctloop.errors import BatchPredictionError
from ctloop.pipeline import log_metrics, set_tag, step
from ctloop.pipeline.tracking import current_home, current_workspace, record_input

__all__ = ["batch_predict"]

OUTPUT_NAME = "predictions.parquet"


@step
def batch_predict(
    model: Any,
    data: Any,
    id_column: str | None = None,
    keep: list[str] | None = None,
    chunk_rows: int = 100_000,
    output_path: str | None = None,
) -> Path:
    """Predictions for every row of ``data`` by ``model`` (a ``Model`` or a
    ``"NAME@ALIAS"`` reference), with ``id_column`` and ``keep`` columns passed through.

    ``output_path`` also writes the file there (atomically). Logs ``rows``, ``chunks``
    and ``rows_per_s``; tags ``runtime`` (``onnx`` or ``native``).

    >>> batch_predict("flights@champion", data, id_column="flight_id")  # doctest: +SKIP
    """
    loaded, version = _model(model)
    folder = _scratch_folder()
    source = _as_file(data, folder)
    target = Path(output_path) if output_path else folder / OUTPUT_NAME
    result = predict_file(
        loaded,
        source,
        target,
        id_column=id_column,
        keep=keep or (),
        chunk_rows=chunk_rows,
        model_version=version,
    )
    log_metrics({"rows": result.rows, "chunks": result.chunks, "rows_per_s": result.rows_per_s})
    set_tag("runtime", result.runtime)
    return target


def _model(model: Any) -> tuple[Model, str | None]:
    if isinstance(model, Model):
        return model, model.metadata.get("version")
    if isinstance(model, str):
        found = load_version(current_workspace(), model, cache_dir=current_home() / "cache")
        set_tag("model_version", found.reference)
        set_tag("model_artifact_id", found.artifact_id)
        record_input("model", found.artifact_id)
        return found.model, found.reference
    raise BatchPredictionError(
        f"batch_predict's model must be a ctloop Model or a reference like "
        f"'flights@champion', not {type(model).__name__}; wrap an estimator with "
        "Model.from_estimator"
    )


def _as_file(data: Any, folder: Path) -> Path:
    """A path to read ``data`` from: paths as they are; tables written to Parquet."""
    if isinstance(data, str | Path):
        return Path(data)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = (
            data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        )
    except Exception as exc:
        raise BatchPredictionError(
            f"batch_predict reads a file path, a pandas DataFrame or an Arrow table, not "
            f"{type(data).__name__}"
        ) from exc
    path = folder / "input.parquet"
    pq.write_table(table, path)
    return path


def _scratch_folder() -> Path:
    """A private folder for this step's files, removed when the process exits (the
    output is in the artifact store by then)."""
    folder = Path(tempfile.mkdtemp(prefix="ctloop-batch-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
