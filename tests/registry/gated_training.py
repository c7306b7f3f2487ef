"""A small gated training pipeline for the registry tests: split → fit → champion_model →
evaluate → gate → register → promote, on generated flights whose lateness depends on
``dep_delay`` and ``weather`` (``distance`` is noise)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ctloop import pipeline, step
from ctloop.artifacts.model import Model
from ctloop.components import champion_model, evaluate, gate, promote, register

MODEL = "flights"
CARRIERS = ["AA", "DL", "UA"]


def flights(rows: int = 600, seed: int = 3) -> pd.DataFrame:
    """Generated flights with a known answer: late = f(dep_delay, weather) + noise."""
    rng = np.random.default_rng(seed)
    delay = rng.normal(size=rows)
    weather = rng.normal(size=rows)
    return pd.DataFrame(
        {
            "dep_delay": delay,
            "weather": weather,
            "distance": rng.uniform(100.0, 2500.0, rows),
            "carrier": rng.choice(CARRIERS, rows),
            "late": (delay + weather + 0.7 * rng.normal(size=rows) > 0).astype(int),
        }
    )


@step(outputs=("train", "test"))
def split_flights(rows: int = 600) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = flights(rows)
    return data.iloc[: rows // 2].reset_index(drop=True), data.iloc[rows // 2 :].reset_index(
        drop=True
    )


@step
def fit(train: pd.DataFrame, features: str) -> Model:
    columns = features.split(",")
    estimator = LogisticRegression().fit(train[columns], train["late"])
    return Model.from_estimator(estimator, train[columns])


@pipeline
def gated_training(
    features: str = "dep_delay", min_auc: float = 0.55, max_drop: float = 0.01
) -> None:
    train, test = split_flights()
    model = fit(train, features)
    champion = champion_model(name=MODEL)
    evaluation = evaluate(
        model,
        test,
        label="late",
        slices=["carrier", {"column": "distance", "bins": [0, 1000, "inf"]}],
        baseline=champion,
    )
    blessing = gate(
        evaluation,
        model,
        absolute=[f"auc >= {min_auc}"],
        change=[f"auc may drop by {max_drop}"],
        min_slice_rows=20,
    )
    promote(register(model, blessing, name=MODEL), reason="passed the gate")
