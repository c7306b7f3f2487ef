"""Statistics and drift for 1,000,000 rows × 20 columns, against a plain pandas pass.

Builds a synthetic reference table and a current table (12 numeric, 8 categorical columns)
in which four columns drift on purpose: ``num_0`` (mean moved by one standard deviation),
``num_1`` (spread doubled), ``cat_0`` (a new category in 30 % of rows) and ``cat_1``
(frequencies reshuffled). Prints one JSON line::

    python benchmarks/drift.py                # ctloop and the pandas baseline
    python benchmarks/drift.py --rows 200000  # a smaller table
    python benchmarks/drift.py --with-peers   # adds Evidently's entry

- ``ctloop_s``: ``compute_statistics(current)`` plus ``detect_drift`` against the stored
  reference statistics (best of ``--repeat``); ``reference_statistics_s`` is apart.
- ``ctloop_chunked_s``: the same, reading the table in chunks of 100,000 rows.
- ``baseline_s``: one pandas pass over the current table (count, missing, min, max, mean,
  std, quartiles per numeric column; ``value_counts`` per categorical column).
- ``ctloop_peak_mib``: peak of Python-tracked allocations (``tracemalloc``, which sees
  NumPy's buffers) plus Arrow's pool, during the chunked run.
- ``columns``: the verdict per column (test, statistic, drifted).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ctloop.data import DatasetStatistics, compute_statistics, detect_drift

NUMERIC = 12
CATEGORICAL = 8
DRIFTED = ("num_0", "num_1", "cat_0", "cat_1")


def make_table(rows: int, *, drift: bool, seed: int) -> pa.Table:
    """A synthetic table; with ``drift`` the columns in ``DRIFTED`` change distribution."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for i in range(NUMERIC):
        columns[f"num_{i}"] = _numeric(rng, i, rows, drift)
    for i in range(CATEGORICAL):
        columns[f"cat_{i}"] = _categorical(rng, i, rows, drift)
    return pa.table(columns)


def _numeric(rng: np.random.Generator, i: int, rows: int, drift: bool) -> np.ndarray:
    """Normal, log-normal or integer values; ``num_0``/``num_1`` shift when drifting."""
    if i % 3 == 2:
        return rng.integers(0, 100, rows)
    values = rng.normal(50.0, 10.0, rows) if i % 3 == 0 else rng.lognormal(1.0, 0.5, rows)
    if drift and i == 0:
        values = values + 10.0
    if drift and i == 1:
        values = (values - values.mean()) * 2 + values.mean()
    return values


def _categorical(rng: np.random.Generator, i: int, rows: int, drift: bool) -> pa.Array:
    """Strings from 4 to 400 categories (booleans for the last); ``cat_0``/``cat_1`` drift."""
    if i == CATEGORICAL - 1:
        return pa.array(rng.random(rows) < 0.3)
    size = 4 * 10 ** (i % 3)
    names = np.array([f"value_{k}" for k in range(size)], dtype=object)
    weights = np.linspace(1.0, 2.0, size)
    if drift and i == 1:
        weights = weights[::-1] ** 3
    codes = rng.choice(size, rows, p=weights / weights.sum())
    values = names[codes]
    if drift and i == 0:
        values = np.where(rng.random(rows) < 0.3, "brand_new", values)
    return pa.array(values, pa.string())


def pandas_pass(frame: pd.DataFrame) -> dict[str, Any]:
    """What a hand-written single pass computes: the baseline."""
    summary: dict[str, Any] = {}
    for name, series in frame.items():
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            summary[str(name)] = (
                series.count(),
                series.isna().sum(),
                series.min(),
                series.max(),
                series.mean(),
                series.std(),
                series.quantile([0.25, 0.5, 0.75]),
            )
        else:
            summary[str(name)] = series.value_counts()
    return summary


def best_of(repeat: int, work: Callable[[], Any]) -> float:
    """Fastest wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_mib(work: Callable[[], Any]) -> float:
    """Peak of tracemalloc-tracked plus Arrow-pool memory while ``work`` runs, in MiB."""
    pool = pa.default_memory_pool()
    arrow_before = pool.bytes_allocated()
    tracemalloc.start()
    work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrow_peak = max(pool.max_memory() - arrow_before, 0)
    return round((peak + arrow_peak) / 2**20, 1)


def run(rows: int, repeat: int, with_peers: bool) -> dict[str, Any]:
    """Every measurement, as one JSON-able dict."""
    reference_table = make_table(rows, drift=False, seed=1)
    current = make_table(rows, drift=True, seed=2)
    start = time.perf_counter()
    reference = DatasetStatistics.from_dict(compute_statistics(reference_table).to_dict())
    reference_s = time.perf_counter() - start
    frame = current.to_pandas()

    def ctloop_once(chunk_rows: int = 1_000_000) -> Any:
        return detect_drift(reference, compute_statistics(current, chunk_rows=chunk_rows))

    report = ctloop_once()
    ctloop_s = best_of(repeat, ctloop_once)
    baseline_s = best_of(repeat, lambda: pandas_pass(frame))
    result: dict[str, Any] = {
        "benchmark": "drift",
        "rows": rows,
        "columns": NUMERIC + CATEGORICAL,
        "ctloop_s": round(ctloop_s, 3),
        "ctloop_chunked_s": round(best_of(repeat, lambda: ctloop_once(100_000)), 3),
        "reference_statistics_s": round(reference_s, 3),
        "baseline_s": round(baseline_s, 3),
        "ratio_to_baseline": round(ctloop_s / baseline_s, 2),
        "ctloop_peak_mib": peak_mib(lambda: ctloop_once(100_000)),
        "reference_statistics_kib": round(len(json.dumps(reference.to_dict())) / 1024, 1),
        "dataset_drifted": report.drifted,
        "drifted_columns": list(report.drifted_columns),
        "expected_drifted": list(DRIFTED),
        "verdicts": {
            c.column: {"test": c.test, "statistic": round(c.statistic, 4), "drifted": c.drifted}
            for c in report.columns
        },
        "python": platform.python_version(),
    }
    if with_peers:
        result["evidently"] = {"error": "not measured"}
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--with-peers", action="store_true")
    options = parser.parse_args(argv)
    print(json.dumps(run(options.rows, options.repeat, options.with_peers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
