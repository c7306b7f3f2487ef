"""A small time-stamped problem whose relation drifts, and a pipeline a backtest runs.

Every day has 80 rows; the label follows ``x`` until 2024-03-01 and ``-x`` after, so a
model retrained on recent days keeps up and the first fold's model does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ctloop import log_metrics, pipeline, step
from ctloop.components import evaluate
from ctloop.components import fit as fit_model
from ctloop.evaluate import classification_metrics

SWITCH = pd.Timestamp("2024-03-01")


def history(days: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    day = pd.date_range("2024-01-01", periods=days, freq="D").repeat(80)
    x = rng.normal(size=len(day))
    sign = np.where(day < SWITCH, 1.0, -1.0)
    late = (sign * x + rng.normal(scale=0.5, size=len(day)) > 0).astype(int)
    return pd.DataFrame({"day": day, "x": x, "late": late})


@step(outputs=("train", "test"))
def split(
    train_start: str | None, train_end: str, test_start: str, test_end: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = history()
    after = data["day"] >= pd.Timestamp(train_start) if train_start else True
    train = data[after & (data["day"] < pd.Timestamp(train_end))]
    test = data[(data["day"] >= pd.Timestamp(test_start)) & (data["day"] < pd.Timestamp(test_end))]
    return train.reset_index(drop=True), test.reset_index(drop=True)


@step
def fit(train: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(train[["x"]], train["late"])


@step
def score(model: LogisticRegression, test: pd.DataFrame) -> dict:
    if test.empty:
        raise ValueError("no rows to score")
    found = classification_metrics(test["late"], model.predict_proba(test[["x"]])[:, 1])
    log_metrics({f"eval.{k}": v for k, v in found.values.items() if v is not None})
    return found.values


@pipeline
def training(
    train_start: str | None = None,
    train_end: str = "2024-02-01",
    test_start: str = "2024-02-01",
    test_end: str = "2024-02-08",
) -> None:
    train, test = split(train_start, train_end, test_start, test_end)
    score(fit(train), test)


@pipeline
def untimed(path: str = "x") -> None:
    fit(split(None, "2024-02-01", "2024-02-01", "2024-02-08")[0])


def regions(days: int = 120) -> pd.DataFrame:
    """Two regions: in ``north`` the label flips with ``x`` on 2024-03-01, in ``south`` it
    never does; ``x_north`` lets one linear model learn both."""
    rng = np.random.default_rng(11)
    day = pd.date_range("2024-01-01", periods=days, freq="D").repeat(120)
    region = np.where(np.arange(len(day)) % 3 == 0, "north", "south")
    x = rng.normal(size=len(day))
    sign = np.where((region == "north") & (day >= SWITCH), -1.0, 1.0)
    late = (sign * x + rng.normal(scale=0.5, size=len(day)) > 0).astype(int)
    frame = {"day": day, "region": region, "x": x, "x_north": np.where(region == "north", x, 0.0)}
    return pd.DataFrame({**frame, "late": late})


@step(outputs=("train", "test"))
def split_regions(
    train_start: str | None, train_end: str, test_start: str, test_end: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = regions()
    after = data["day"] >= pd.Timestamp(train_start) if train_start else True
    train = data[after & (data["day"] < pd.Timestamp(train_end))]
    test = data[(data["day"] >= pd.Timestamp(test_start)) & (data["day"] < pd.Timestamp(test_end))]
    return train.drop(columns="day").reset_index(drop=True), test.drop(columns="day").reset_index(
        drop=True
    )


@pipeline
def sliced(
    train_start: str | None = None,
    train_end: str = "2024-02-01",
    test_start: str = "2024-02-01",
    test_end: str = "2024-02-08",
) -> None:
    train, test = split_regions(train_start, train_end, test_start, test_end)
    model = fit_model(
        train,
        label="late",
        estimator="sklearn.linear_model.LogisticRegression",
        features=["x", "x_north"],
    )
    evaluate(model, test, label="late", slices=["region"], attributions=False, contributions=False)
