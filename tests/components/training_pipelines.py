"""Pipelines for the training components' tests (module level, so worker processes and
the ``ctloop`` command can import them)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ctloop import checkpoint, log_metric, pipeline, step
from ctloop.components import fit, tune
from ctloop.components.training import make_fit_step

SPACE = {"max_depth": {"int": [1, 3]}, "learning_rate": {"float": [0.05, 0.5], "log": True}}


@step
def make_data(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """A table with a known answer: ``late`` is 1 when ``delay`` plus noise exceeds 30."""
    rng = np.random.default_rng(seed)
    delay = rng.normal(20.0, 15.0, rows)
    distance = rng.uniform(100.0, 2500.0, rows)
    late = (delay + rng.normal(0.0, 5.0, rows) > 30.0).astype(int)
    return pd.DataFrame({"delay": delay, "distance": distance, "late": late})


@step(outputs=("train", "valid"))
def split(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return data.iloc[: len(data) * 2 // 3], data.iloc[len(data) * 2 // 3 :]


@pipeline
def fit_xgboost(rounds: int = 40) -> None:
    fit(
        make_data(),
        label="late",
        estimator="xgboost.XGBClassifier",
        params={"n_estimators": rounds, "max_depth": 2, "n_jobs": 1},
    )


@pipeline
def tune_boosting(n_trials: int = 4, n_jobs: int = 1) -> None:
    train, valid = split(make_data())
    tune(
        train,
        valid,
        label="late",
        estimator="sklearn.ensemble.GradientBoostingClassifier",
        params={"n_estimators": 10, "random_state": 0},
        space=SPACE,
        n_trials=n_trials,
        n_jobs=n_jobs,
    )


# -- a user's own training loop with checkpoints ----------------------------------------


@step
def epochs(total: int = 6) -> dict[str, Any]:
    """Adds 1.0 per epoch; dies after epoch 3 while the file FAIL_ONCE names exists."""
    found = checkpoint.latest()
    start, state = (0, {"weights": 0.0}) if found is None else found
    log_metric("start_epoch", start)
    for epoch in range(start, total):
        state = {"weights": state["weights"] + 1.0}
        checkpoint.save(state, step=epoch + 1)
        marker = Path(os.environ.get("FAIL_ONCE", "/nonexistent"))
        if epoch + 1 == 3 and marker.exists():
            marker.unlink()
            raise RuntimeError("the machine went away at epoch 3")
    return {"weights": state["weights"], "started_at": start}


@pipeline
def user_loop(total: int = 6) -> None:
    epochs(total)


# -- a long XGBoost fit, killed and resumed by the checkpoint test --------------------


def _slow_callback() -> Any:
    import xgboost

    class SlowRounds(xgboost.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            time.sleep(float(os.environ.get("SLOW_ROUND_S", "0")))
            return False

    return SlowRounds()


@step
def long_fit(data: pd.DataFrame, rounds: int = 200) -> Any:
    from xgboost import XGBClassifier

    from ctloop.train import fit as fit_estimator

    estimator = XGBClassifier(
        n_estimators=rounds, max_depth=2, n_jobs=1, callbacks=[_slow_callback()]
    )
    result = fit_estimator(
        estimator, data, "late", checkpoints=checkpoint.store(), checkpoint_every=10
    )
    log_metric("resumed_from", result.resumed_from)
    result.model.estimator.set_params(callbacks=None)
    return result.model


@pipeline
def long_training(rounds: int = 200) -> None:
    long_fit(make_data(), rounds)


# -- an estimator built in code -----------------------------------------------------------


def scaled_tree(**params: Any) -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    return make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0, **params))


fit_scaled_tree = make_fit_step(scaled_tree, name="fit_scaled_tree")


@pipeline
def built_in_code(max_depth: int = 2) -> None:
    fit_scaled_tree(make_data(), label="late", params={"max_depth": max_depth})
