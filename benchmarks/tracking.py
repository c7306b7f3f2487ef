"""What experiment tracking costs in ctloop, and how that compares with MLflow.

10 runs each log 1,000 metric points and 10 params (10,000 points, 100 params), then
the runs and their metrics are queried. Prints one JSON line::

    python benchmarks/tracking.py                  # ctloop only
    python benchmarks/tracking.py --with-peers     # and MLflow, in .bench/mlflow-venv
    python benchmarks/tracking.py --repeat 5       # best of 5 (default 3)

Each ctloop sample runs in a fresh process with a fresh state folder (``CTLOOP_HOME``,
default SQLite store). A pipeline of one step runs 10 times with tracking (the step calls
``log_metric`` 1,000 times and ``log_param`` 10 times) and 10 times without (the same
step, the same loop, no tracking calls), alternately, after one warm-up run:

- ``tracked_runs_s`` / ``untracked_runs_s``: the 10 runs' total wall time, each way.
- ``tracking_s``: their difference, what the tracking calls cost end to end (buffering,
  records, the write with the step's result); ``per_point_s`` divides it by 10,000.
- ``store_log_batch_s``: the direct store path, ``MetadataStore.log_batch`` of 1,000
  metrics and 10 params, ×10 (records built before the clock starts).
- queries: ``list_runs`` of the 10 runs plus ``get_metrics`` of each (``get_metrics_s``
  all 10, ``get_metrics_one_s`` the slowest one, ``query_s`` ``list_runs`` plus all 10),
  first in the small store, then again after 10,000 more runs (10 metric points each, in
  10 pipelines, one of them the tracked one) were added (``*_10k_s``).

MLflow (``--with-peers``) is installed on first use into ``.bench/mlflow-venv`` and runs
``benchmarks/mlflow_tracking.py`` against a fresh SQLite file, telemetry off and, where
Linux user namespaces allow it, without network (``unshare -rn``). Its per-call path is
10 runs × 1,000 ``mlflow.log_metric`` (``--mlflow-per-call-runs 1`` measures one run and
scales it to 10, which the JSON says). If MLflow cannot be installed or run, its entry is
``{"error": ...}``.

Ratios (``ratios``): MLflow's per-call metric time over ctloop's ``tracking_s`` and over
ctloop's whole ``tracked_runs_s`` (the stricter one); MLflow's ``log_batch`` time over
ctloop's ``tracking_s`` and over ctloop's ``store_log_batch_s``. ``goals_met`` checks
the targets: 20x MLflow's batched path and 100x its per-call path (both against
``tracking_s``), and queries under 50 ms with 10,000 runs in the store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from peers import best_timings, clean_env, ensure_venv, offline_prefix, run_child

RUNS = 10
POINTS = 1_000
PARAMS = 10
FILLER_RUNS = 10_000
FILLER_POINTS = 10
FILLER_PIPELINES = 10
PIPELINE = "tracking_bench"
ROOT = Path(__file__).resolve().parents[1]
MLFLOW_SCRIPT = Path(__file__).resolve().parent / "mlflow_tracking.py"


# --- ctloop side: runs in a child process (``--measure-ctloop``) -----------------------


def measure_ctloop_once() -> dict[str, Any]:
    """All ctloop figures of one sample, in this (fresh) process and home."""
    t = time.perf_counter()
    import ctloop
    from ctloop.store.workspace import Workspace

    import_s = time.perf_counter() - t
    tracked, untracked = _bench_pipelines()
    store = Workspace.open().metadata
    store.list_runs(limit=1)  # create the store before any clock starts
    untracked.run(executor="local", cache=False)  # warm-up: imports, code hashing
    tracked_s = untracked_s = 0.0
    run_ids = []
    for _ in range(RUNS):
        t = time.perf_counter()
        result = tracked.run(executor="local", cache=False)
        tracked_s += time.perf_counter() - t
        run_ids.append(result.run_id)
        t = time.perf_counter()
        untracked.run(executor="local", cache=False)
        untracked_s += time.perf_counter() - t
    figures: dict[str, Any] = {
        "version": ctloop.__version__,
        "import_s": import_s,
        "tracked_runs_s": tracked_s,
        "untracked_runs_s": untracked_s,
        "store_log_batch_s": _store_log_batch(store),
    }
    figures |= _queries(store, run_ids, suffix="")
    figures["filler_insert_s"] = _add_filler_runs(store)
    figures |= _queries(store, run_ids, suffix="_10k")
    return figures


def _bench_pipelines() -> tuple[Any, Any]:
    """Two pipelines of the same one step, with and without tracking calls."""
    from ctloop import log_metric, log_param, pipeline, step

    @step
    def train(track: bool) -> float:
        total = 0.0
        for i in range(POINTS):
            value = 1.0 / (i + 1)
            if track:
                log_metric("loss", value, step=i)
            total += value
        for p in range(PARAMS):
            if track:
                log_param(f"param_{p}", p)
        return total

    @pipeline(name=PIPELINE)
    def tracked() -> None:
        train(True)

    @pipeline(name=f"{PIPELINE}_baseline")
    def untracked() -> None:
        train(False)

    return tracked, untracked


def _store_log_batch(store: Any) -> float:
    """Seconds for ``RUNS`` ``log_batch`` calls of ``POINTS`` metrics and ``PARAMS`` params."""
    from ctloop.store.records import MetricRecord, ParamRecord

    seconds = 0.0
    for run_id in _create_runs(store, RUNS, ["store_log_batch"]):
        metrics = [MetricRecord(run_id, "loss", 1.0 / (i + 1), step=i) for i in range(POINTS)]
        params = [ParamRecord(run_id, f"param_{p}", str(p)) for p in range(PARAMS)]
        t = time.perf_counter()
        store.log_batch(metrics=metrics, params=params)
        seconds += time.perf_counter() - t
    return seconds


def _create_runs(store: Any, count: int, pipelines: list[str]) -> list[str]:
    """Create ``count`` succeeded runs spread over ``pipelines``; their ids."""
    import socket

    from ctloop.store.records import RunRecord, new_id, utcnow

    ids = []
    for n in range(count):
        now = utcnow()
        run = RunRecord(
            id=new_id(),
            pipeline=pipelines[n % len(pipelines)],
            pipeline_version="bench",
            reference="benchmarks/tracking.py",
            parameters={},
            trigger="manual",
            user="bench",
            host=socket.gethostname(),
            pid=os.getpid(),
            status="succeeded",
            started_at=now,
            ended_at=now,
        )
        store.create_run(run)
        ids.append(run.id)
    return ids


def _add_filler_runs(store: Any) -> float:
    """Add ``FILLER_RUNS`` runs with ``FILLER_POINTS`` points each; seconds it took."""
    from ctloop.store.records import MetricRecord

    t = time.perf_counter()
    names = [PIPELINE] + [f"filler_{n}" for n in range(1, FILLER_PIPELINES)]
    run_ids = _create_runs(store, FILLER_RUNS, names)
    metrics = [
        MetricRecord(run_id, "loss", 1.0 / (i + 1), step=i)
        for run_id in run_ids
        for i in range(FILLER_POINTS)
    ]
    store.log_batch(metrics=metrics)
    return time.perf_counter() - t


def _queries(store: Any, run_ids: list[str], *, suffix: str) -> dict[str, float]:
    """Seconds for ``list_runs`` (unfiltered and by pipeline) and ``get_metrics`` of the
    tracked runs; checks that every point comes back."""
    t = time.perf_counter()
    store.list_runs(limit=RUNS)
    list_runs_s = time.perf_counter() - t
    t = time.perf_counter()
    store.list_runs(pipeline=PIPELINE, limit=RUNS)
    list_pipeline_s = time.perf_counter() - t
    points, each = 0, []
    for run_id in run_ids:
        t = time.perf_counter()
        points += len(store.get_metrics(run_id))
        each.append(time.perf_counter() - t)
    t = time.perf_counter()
    params = sum(len(store.get_params(run_id)) for run_id in run_ids)
    get_params_s = time.perf_counter() - t
    if points != RUNS * POINTS or params != RUNS * PARAMS:
        raise RuntimeError(f"queries found {points} points and {params} params")
    return {
        f"list_runs{suffix}_s": list_runs_s,
        f"list_runs_pipeline{suffix}_s": list_pipeline_s,
        f"get_metrics{suffix}_s": sum(each),
        f"get_metrics_one{suffix}_s": max(each),
        f"get_params{suffix}_s": get_params_s,
        f"query{suffix}_s": list_pipeline_s + sum(each),
    }


def ctloop_figures(repeat: int) -> dict[str, Any]:
    """Best of ``repeat`` fresh-process measurements of ctloop."""
    samples = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="ctloop-bench-") as tmp:
            out = Path(tmp) / "result.json"
            env = clean_env("MLFLOW_") | {"CTLOOP_HOME": str(Path(tmp) / "home")}
            cmd = [sys.executable, str(Path(__file__).resolve()), "--measure-ctloop", str(out)]
            run_child(cmd, env, Path(tmp), timeout=600)
            samples.append(json.loads(out.read_text()))
    best = best_timings(samples, digits=4)
    # the difference of sums of the same sample, then the best sample (not min - min)
    best["tracking_s"] = round(min(s["tracked_runs_s"] - s["untracked_runs_s"] for s in samples), 4)
    best["per_point_s"] = best["tracking_s"] / (RUNS * POINTS)
    best["per_point_incl_runs_s"] = best["tracked_runs_s"] / (RUNS * POINTS)
    return best


# --- MLflow side: its own virtual environment -----------------------------------------


def mlflow_figures(repeat: int, per_call_runs: int) -> dict[str, Any]:
    """Best of ``repeat`` MLflow measurements, or ``{"error": ...}`` saying what failed."""
    try:
        python = ensure_mlflow_venv()
        samples = [_mlflow_once(python, per_call_runs) for _ in range(repeat)]
    except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
        return {"error": str(exc)}
    figures = best_timings(samples, digits=4)
    figures["per_point_s"] = figures["per_call_metrics_s"] / (RUNS * POINTS)
    figures["batched_per_point_s"] = figures["batched_log_batch_s"] / (RUNS * POINTS)
    figures["network_isolated"] = bool(offline_prefix())
    return figures


def ensure_mlflow_venv() -> Path:
    """The Python of ``.bench/mlflow-venv``, created with ``mlflow`` if missing."""
    return ensure_venv("mlflow-venv", ["mlflow"], "import mlflow")


def _mlflow_once(python: Path, per_call_runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mlflow-bench-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        out = Path(tmp) / "result.json"
        env = clean_env("MLFLOW_") | {
            "MLFLOW_TRACKING_URI": f"sqlite:///{Path(tmp) / 'mlflow.db'}",
            "MLFLOW_ENABLE_TELEMETRY": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
        }
        script = [str(MLFLOW_SCRIPT), str(out), str(Path(tmp) / "artifacts")]
        cmd = [*offline_prefix(), str(python), *script, "--per-call-runs", str(per_call_runs)]
        run_child(cmd, env, work, timeout=900)
        return json.loads(out.read_text())


def _ratios(ours: dict[str, Any], mlflow: dict[str, Any]) -> dict[str, float]:
    """How many times ctloop is faster, per path (greater is better for ctloop)."""

    def ratio(theirs: str, mine: str) -> float:
        return round(float(mlflow[theirs]) / float(ours[mine]), 1)

    return {
        "per_call_vs_tracking": ratio("per_call_metrics_s", "tracking_s"),
        "per_call_vs_tracked_runs": ratio("per_call_metrics_s", "tracked_runs_s"),
        "batched_vs_tracking": ratio("batched_log_batch_s", "tracking_s"),
        "batched_vs_store_log_batch": ratio("batched_log_batch_s", "store_log_batch_s"),
        "search_runs_vs_list_runs": ratio("search_runs_s", "list_runs_pipeline_s"),
        "metric_history_vs_get_metrics": ratio("get_metric_history_s", "get_metrics_s"),
    }


def _goals(ours: dict[str, Any], ratios: dict[str, float] | None) -> dict[str, bool]:
    """The issue's goals: 20x MLflow's batched path, 100x its per-call path, and queries
    under 50 ms with 10,000 runs in the store (each query, and the 11 together)."""
    slowest = max(float(ours["list_runs_pipeline_10k_s"]), float(ours["get_metrics_one_10k_s"]))
    goals = {
        "each_query_10k_under_50ms": slowest < 0.05,
        "all_queries_10k_under_50ms": float(ours["query_10k_s"]) < 0.05,
    }
    if ratios is not None:
        goals["batched_20x"] = ratios["batched_vs_tracking"] >= 20
        goals["per_call_100x"] = ratios["per_call_vs_tracking"] >= 100
    return goals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-peers", action="store_true", help="also measure MLflow")
    parser.add_argument("--repeat", type=int, default=3, help="ctloop measurements (best)")
    parser.add_argument("--peer-repeat", type=int, default=1, help="MLflow measurements")
    parser.add_argument(
        "--mlflow-per-call-runs",
        type=int,
        default=RUNS,
        help="runs of 1,000 mlflow.log_metric calls to measure (scaled to 10)",
    )
    parser.add_argument("--measure-ctloop", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_ctloop:
        Path(args.measure_ctloop).write_text(json.dumps(measure_ctloop_once()))
        return 0

    load_avg = round(os.getloadavg()[0], 2)  # other work on the machine skews timings
    ours = ctloop_figures(args.repeat)
    report: dict[str, Any] = {
        "benchmark": "tracking",
        "runs": RUNS,
        "points_per_run": POINTS,
        "params_per_run": PARAMS,
        "filler_runs": FILLER_RUNS,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1m": load_avg,
        "ctloop": ours,
    }
    ratios = None
    if args.with_peers:
        mlflow = mlflow_figures(args.peer_repeat, args.mlflow_per_call_runs)
        report["mlflow"] = mlflow
        if "error" not in mlflow:
            ratios = report["ratios"] = _ratios(ours, mlflow)
    report["goals_met"] = _goals(ours, ratios)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
