"""MLflow's side of ``benchmarks/tracking.py``: the same points through MLflow's own API.

Runs in the MLflow virtual environment (``.bench/mlflow-venv``), started by
``tracking.py --with-peers`` with ``MLFLOW_TRACKING_URI`` pointing at a fresh SQLite file
and telemetry off. Writes one JSON object to the path given as the first argument::

    python benchmarks/mlflow_tracking.py OUT.json ARTIFACT_DIR [--per-call-runs N]

- ``import_s``: ``import mlflow``; ``store_init_s``: creating the experiment (this
  creates the SQLite schema).
- per-call path: ``RUNS`` runs, each ``mlflow.start_run``, ``POINTS`` ``mlflow.log_metric``
  calls, ``PARAMS`` ``mlflow.log_param`` calls, ``mlflow.end_run``. With
  ``--per-call-runs N`` < ``RUNS`` only N runs are made and the times are scaled to
  ``RUNS`` runs (``per_call_extrapolated_from_runs`` says so).
- batched path: ``RUNS`` runs through ``MlflowClient``: ``create_run``, one ``log_batch``
  of ``POINTS`` metrics and ``PARAMS`` params, ``set_terminated``.
- queries: ``mlflow.search_runs`` over the batched runs, ``get_metric_history`` of each.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

RUNS = 10
POINTS = 1_000
PARAMS = 10


def per_call_path(mlflow: Any, experiment_id: str, runs: int) -> dict[str, float]:
    """Seconds spent in ``log_metric``, ``log_param`` and in whole runs (per-call API)."""
    metric_s = param_s = 0.0
    t_total = time.perf_counter()
    for run in range(runs):
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"per-call-{run}"):
            t = time.perf_counter()
            for i in range(POINTS):
                mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
            metric_s += time.perf_counter() - t
            t = time.perf_counter()
            for p in range(PARAMS):
                mlflow.log_param(f"param_{p}", p)
            param_s += time.perf_counter() - t
    total_s = time.perf_counter() - t_total
    scale = RUNS / runs
    return {
        "per_call_metrics_s": metric_s * scale,
        "per_call_params_s": param_s * scale,
        "per_call_total_s": total_s * scale,
    }


def batched_path(client: Any, experiment_id: str) -> tuple[dict[str, float], list[str]]:
    """Seconds spent in ``log_batch`` and in whole runs (batched API); the run ids."""
    from mlflow.entities import Metric, Param

    batch_s = 0.0
    run_ids = []
    t_total = time.perf_counter()
    for run in range(RUNS):
        run_id = client.create_run(experiment_id, run_name=f"batched-{run}").info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(POINTS)]
        params = [Param(f"param_{p}", str(p)) for p in range(PARAMS)]
        t = time.perf_counter()
        client.log_batch(run_id, metrics=metrics, params=params)
        batch_s += time.perf_counter() - t
        client.set_terminated(run_id)
        run_ids.append(run_id)
    total_s = time.perf_counter() - t_total
    return {"batched_log_batch_s": batch_s, "batched_total_s": total_s}, run_ids


def queries(mlflow: Any, client: Any, experiment_id: str, run_ids: list[str]) -> dict[str, float]:
    """Seconds for ``search_runs`` over the runs and ``get_metric_history`` of each."""
    t = time.perf_counter()
    found = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string="attributes.run_name LIKE 'batched-%'",
        max_results=RUNS,
    )
    search_s = time.perf_counter() - t
    t = time.perf_counter()
    points = sum(len(client.get_metric_history(run_id, "loss")) for run_id in run_ids)
    history_s = time.perf_counter() - t
    if len(found) != RUNS or points != RUNS * POINTS:
        raise RuntimeError(f"queries found {len(found)} runs and {points} points")
    return {"search_runs_s": search_s, "get_metric_history_s": history_s}


def measure(artifact_dir: Path, per_call_runs: int) -> dict[str, Any]:
    """All MLflow figures of one sample, in this (fresh) process."""
    t = time.perf_counter()
    import mlflow
    from mlflow import MlflowClient

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    client = MlflowClient()
    experiment_id = client.create_experiment(
        "tracking-bench", artifact_location=artifact_dir.resolve().as_uri()
    )
    store_init_s = time.perf_counter() - t
    figures: dict[str, Any] = {
        "version": mlflow.__version__,
        "tracking_uri": mlflow.get_tracking_uri().split(":")[0],
        "import_s": import_s,
        "store_init_s": store_init_s,
    }
    figures |= per_call_path(mlflow, experiment_id, per_call_runs)
    if per_call_runs < RUNS:
        figures["per_call_extrapolated_from_runs"] = per_call_runs
    batched, run_ids = batched_path(client, experiment_id)
    figures |= batched
    figures |= queries(mlflow, client, experiment_id, run_ids)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("artifact_dir", type=Path)
    parser.add_argument("--per-call-runs", type=int, default=RUNS)
    args = parser.parse_args()
    runs = max(1, min(args.per_call_runs, RUNS))
    args.out.write_text(json.dumps(measure(args.artifact_dir, runs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
