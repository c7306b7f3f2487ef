"""The flights model trained continuously: the retraining pipeline of the level-2 loop.

Labelled weeks land as Parquet files in a folder (``week-NN.parquet``: the flights of a
week with their actual arrival delays, a week after they flew). The pipeline trains on
the most recent ones::

    load_recent -> statistics -> validate (schema.yaml; stops on schema skew)
                -> split_newest (train on all but the newest week, hold the newest out)
                -> fit_flights -> champion_model -> evaluate (overall and per carrier,
                   candidate and champion on the same held-out week)
                -> gate (absolute AUC floor; may not be worse than the champion)
                -> register (as challenger) -> release

A model that fails the gate is not registered, and production keeps its champion.
``release`` promotes the challenger to champion (``release_as=direct``, the default) or
starts it as a canary on ``canary_traffic`` percent of the requests (``release_as=canary``);
the scheduler then judges the canary on its labelled requests against the champion's and
promotes or rolls it back (``ctloop.monitor._canary``). Run it by hand with::

    ctloop run examples/flights/continuous.py:retrain -p folder=landing -p weeks=8
    ctloop run examples/flights/continuous.py:retrain -p folder=landing -p release_as=canary

``ctloop demo`` runs it from the scheduler when monitoring sees the model decay.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ctloop import FilePath, log_metric, pipeline, step
from ctloop.artifacts.model import Model
from ctloop.components import (
    champion_model,
    evaluate,
    gate,
    register,
    release,
    statistics,
    validate,
)

HERE = Path(__file__).resolve().parent

try:  # run as a file by ctloop (its folder is on sys.path) or imported as a module
    from pipeline import FEATURES, features, fit_model
except ImportError:  # pragma: no cover
    from examples.flights.pipeline import FEATURES, features, fit_model

LABEL = "late"


@step(cache=False)
def load_recent(folder: str, weeks: int = 8) -> pd.DataFrame:
    """The ``weeks`` newest labelled files of ``folder`` (by name), as one table."""
    files = sorted(Path(folder).glob("week-*.parquet"))[-weeks:]
    if not files:
        raise FileNotFoundError(f"no week-*.parquet files in {folder}; nothing to train on")
    print(f"training data: {', '.join(f.name for f in files)}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


@step(outputs=("train", "holdout"))
def split_newest(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All weeks but the newest to train on; the newest week held out for the gate."""
    week = (pd.to_datetime(data["date"]) - pd.Timestamp("2013-01-01")).dt.days // 7
    newest = week == week.max()
    return data[~newest].reset_index(drop=True), data[newest].reset_index(drop=True)


@step
def fit_flights(train: pd.DataFrame, max_depth: int = 6, learning_rate: float = 0.1) -> Model:
    """The late-arrival classifier as a ``Model`` (signature, example, training statistics)."""
    from ctloop.data import compute_statistics

    X, _ = features(train)
    estimator = fit_model(train, max_depth=max_depth, learning_rate=learning_rate)
    log_metric("train_rows", len(X))
    return Model.from_estimator(
        estimator, X, task="classification", training_statistics=compute_statistics(X)
    )


@step
def labelled(data: pd.DataFrame) -> pd.DataFrame:
    """Model inputs plus the ``late`` label: the table ``evaluate`` scores."""
    X, y = features(data)
    return X.assign(**{LABEL: y.to_numpy()})


@pipeline
def retrain(
    folder: str = "landing",
    weeks: int = 8,
    schema_path: FilePath = FilePath(HERE / "schema.yaml"),
    model_name: str = "flights",
    min_auc: float = 0.6,
    max_drop: float = 0.03,
    max_depth: int = 6,
    release_as: str = "direct",
    canary_traffic: float = 20.0,
) -> None:
    """Validate the newest labelled weeks, train, gate against the champion, release."""
    data = load_recent(folder, weeks=weeks)
    anomalies = validate(statistics(data), schema_path=schema_path)
    train_rows, holdout = split_newest(data)
    train_rows.after(anomalies)
    model = fit_flights(train_rows, max_depth=max_depth)
    champion = champion_model(name=model_name)
    evaluation = evaluate(
        model, labelled(holdout), label=LABEL, slices=["carrier"], baseline=champion
    )
    blessing = gate(
        evaluation,
        model,
        absolute=[f"auc >= {min_auc}"],
        change=[f"auc may drop by {max_drop}"],
        min_slice_rows=1000,
    )
    release(
        register(model, blessing, name=model_name),
        strategy=release_as,
        traffic=canary_traffic,
        reason="retrained: not worse than the champion on the newest week",
    )


__all__ = ["FEATURES", "retrain"]
