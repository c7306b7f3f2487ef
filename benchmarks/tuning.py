"""Tuning LightGBM on the flights data: ctloop's parallel trials against plain Optuna.

``--trials`` trials (default 40) of a ``LGBMClassifier`` (100 rounds) on ``--rows`` rows
(default 200,000) of the flights example's features (``examples/flights/pipeline.py``),
scored by AUC on the next 50,000 rows. The search space: ``num_leaves``,
``learning_rate``, ``min_child_samples``, ``subsample`` (with ``subsample_freq=1``).
Prints one JSON line::

    python benchmarks/tuning.py              # 40 trials
    python benchmarks/tuning.py --trials 8   # a short run

- ``threads_1``, ``threads_2``: :func:`ctloop.train.tune` with ``n_jobs`` 1 and 2 in
  threads (the default);
- ``processes_2``: ``parallel="processes"``, 2 worker processes sharing one study;
- ``ray_2``: ``parallel="ray"``, 2 Ray tasks on a local Ray (``ray_start_s``, the time
  to start Ray, is not in the figure);
- ``optuna_plain_1``: the peer, a plain Optuna study a user would write,
  ``study.optimize(objective, n_jobs=1)``, each trial fitting all 100 rounds (no pruning).

ctloop's runs report the validation AUC at 5 points of each trial's one training (a
LightGBM callback, at rounds 20, 40, 60, 80 and 100) and prune with the median pruner,
which stops a poor trial's training at the point it falls behind; a trial that finishes
is one fit of 100 rounds, as in the peer. Each entry has ``seconds`` (wall clock, one
run each), ``best_auc``, ``trials`` and ``pruned``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FLIGHTS = ROOT / "examples" / "flights" / "data" / "flights.parquet"
sys.path.insert(0, str(ROOT / "examples" / "flights"))

from pipeline import features  # noqa: E402

from ctloop.train import tune  # noqa: E402

FIXED = {"n_estimators": 100, "subsample_freq": 1, "verbose": -1, "random_state": 0}
SPACE = {
    "num_leaves": {"int": [15, 127]},
    "learning_rate": {"float": [0.02, 0.3], "log": True},
    "min_child_samples": {"int": [10, 100]},
    "subsample": {"float": [0.5, 1.0]},
}
VALID_ROWS = 50_000


def flights(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``rows`` training rows and the next 50,000 for validation (features + ``late``)."""
    if not FLIGHTS.exists():
        import subprocess

        script = ROOT / "examples" / "flights" / "prepare_data.py"
        subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    data = pd.read_parquet(FLIGHTS).sample(frac=1.0, random_state=0).reset_index(drop=True)
    X, y = features(data.iloc[: rows + VALID_ROWS])
    table = X.assign(late=y.to_numpy())
    return table.iloc[:rows], table.iloc[rows:]


def ctloop_tune(
    train: pd.DataFrame, valid: pd.DataFrame, trials: int, n_jobs: int, parallel: str
) -> dict[str, Any]:
    """One :func:`ctloop.train.tune` study, timed."""
    from lightgbm import LGBMClassifier

    started = time.perf_counter()
    result = tune(
        LGBMClassifier(**FIXED),
        train,
        valid,
        "late",
        SPACE,
        n_trials=trials,
        n_jobs=n_jobs,
        parallel=parallel,
        seed=0,
    )
    return _figures(time.perf_counter() - started, result.best_score, trials, len(result.pruned))


def optuna_plain(train: pd.DataFrame, valid: pd.DataFrame, trials: int) -> dict[str, Any]:
    """The peer: the Optuna loop a user writes by hand, one trial at a time."""
    import optuna
    from lightgbm import LGBMClassifier
    from sklearn.metrics import roc_auc_score

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    X, y = train.drop(columns="late"), train["late"]
    X_valid, y_valid = valid.drop(columns="late"), valid["late"]

    def objective(trial: optuna.Trial) -> float:
        model = LGBMClassifier(
            num_leaves=trial.suggest_int("num_leaves", 15, 127),
            learning_rate=trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            min_child_samples=trial.suggest_int("min_child_samples", 10, 100),
            subsample=trial.suggest_float("subsample", 0.5, 1.0),
            **FIXED,
        )
        model.fit(X, y)
        return float(roc_auc_score(y_valid, model.predict_proba(X_valid)[:, 1]))

    started = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(objective, n_trials=trials, n_jobs=1)
    return _figures(time.perf_counter() - started, study.best_value, trials, 0)


def _figures(seconds: float, best: float, trials: int, pruned: int) -> dict[str, Any]:
    return {
        "seconds": round(seconds, 2),
        "best_auc": round(best, 4),
        "trials": trials,
        "pruned": pruned,
    }


def run(rows: int, trials: int) -> dict[str, Any]:
    """Every measurement, as one JSON-able dict."""
    from ctloop.workers import connect_ray

    train, valid = flights(rows)
    figures: dict[str, Any] = {}
    figures["threads_1"] = ctloop_tune(train, valid, trials, 1, "threads")
    figures["threads_2"] = ctloop_tune(train, valid, trials, 2, "threads")
    figures["processes_2"] = ctloop_tune(train, valid, trials, 2, "processes")
    started = time.perf_counter()
    connect_ray()
    ray_start = round(time.perf_counter() - started, 2)
    figures["ray_2"] = ctloop_tune(train, valid, trials, 2, "ray")
    figures["optuna_plain_1"] = optuna_plain(train, valid, trials)
    return {
        "benchmark": "tuning",
        "rows": len(train),
        "valid_rows": len(valid),
        "trials": trials,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "ray_start_s": ray_start,
        **figures,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--trials", type=int, default=40)
    options = parser.parse_args(argv)
    print(json.dumps(run(options.rows, options.trials)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
