"""The flights model, trained and scored on any two periods: the pipeline a backtest runs.

``ctloop backtest`` gives each fold ``train_start``, ``train_end``, ``test_start`` and
``test_end`` (ISO dates, half-open periods); this pipeline trains the late-arrival model
of ``pipeline.py`` (LightGBM with fixed parameters: a backtest measures the data's drift,
not a tuner's luck) on the first period and scores the second, overall and per carrier
and origin airport::

    ctloop backtest examples/flights/backtest.py:training --from 2013-03 --to 2013-12 \\
        --every 1w --gap 1w --slice carrier --slice origin --out backtest.html

Nothing is registered: a backtest only measures.
"""

from __future__ import annotations

import pandas as pd

from ctloop import FilePath, pipeline, step
from ctloop.components import evaluate, fit

try:  # run as a file by ctloop (its folder is on sys.path) or imported as a module
    from pipeline import ESTIMATOR, FIXED, labelled, load
except ImportError:  # pragma: no cover
    from examples.flights.pipeline import ESTIMATOR, FIXED, labelled, load

PARAMS = {**FIXED, "num_leaves": 31, "learning_rate": 0.1, "min_child_samples": 50}
"""LightGBM's defaults, with leaves of at least 50 flights."""


@step(outputs=("train", "test"))
def split_by_period(
    data: pd.DataFrame,
    train_start: str | None,
    train_end: str,
    test_start: str,
    test_end: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flights scheduled in ``[train_start, train_end)`` and in ``[test_start, test_end)``."""
    when = pd.to_datetime(data["date"])
    after = when >= pd.Timestamp(train_start) if train_start else pd.Series(True, data.index)
    train = data[after & (when < pd.Timestamp(train_end))]
    test = data[(when >= pd.Timestamp(test_start)) & (when < pd.Timestamp(test_end))]
    if train.empty or test.empty:
        empty = "training" if train.empty else "test"
        raise ValueError(
            f"the {empty} period has no flights (train {train_start or 'start'} to "
            f"{train_end}, test {test_start} to {test_end}); the data covers 2013"
        )
    return train.reset_index(drop=True), test.reset_index(drop=True)


@pipeline
def training(
    path: FilePath = FilePath("examples/flights/data/flights.parquet"),
    train_start: str | None = None,
    train_end: str = "2013-03-01",
    test_start: str = "2013-03-01",
    test_end: str = "2013-03-08",
) -> None:
    """Fit on the training period, evaluate on the test period per carrier and origin."""
    train_df, test_df = split_by_period(load(path), train_start, train_end, test_start, test_end)
    model = fit(labelled(train_df), label="late", estimator=ESTIMATOR, params=PARAMS)
    evaluate(
        model,
        labelled(test_df),
        label="late",
        slices=["carrier", "origin"],
        attributions=False,
        contributions=False,
    )
