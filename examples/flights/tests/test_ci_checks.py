"""Data and model tests of the flights example with ``ctloop.testing``: the sample holds
the schema, its keys have no nulls, values are plausible; the model's predictions are
probabilities, training is reproducible, columns it does not read change nothing, and it
ranks late flights above on-time ones at every airport."""

from __future__ import annotations

import pandas as pd
from conftest import ROOT
from pipeline import CATEGORICAL, FEATURES, features, fit_model
from sklearn.pipeline import Pipeline

from ctloop.testing import (
    check_finite_predictions,
    check_no_nulls,
    check_ranges,
    check_same_seed_same_model,
    check_schema,
    check_slice_quality,
    expect_invariant,
)


def test_the_ci_sample_holds_the_schema(ci_data: pd.DataFrame) -> None:
    check_schema(ci_data, ROOT / "schema.yaml")


def test_routes_and_times_have_no_nulls(ci_data: pd.DataFrame) -> None:
    check_no_nulls(ci_data, [*CATEGORICAL, "distance", "hour", "sched_dep_time", "arr_delay"])


def test_values_are_plausible(ci_data: pd.DataFrame) -> None:
    check_ranges(ci_data, {"distance": (17, 5000), "hour": (0, 23), "temp": (-30, 120)})


def test_predictions_are_probabilities(model: Pipeline, rows: pd.DataFrame) -> None:
    predictions = check_finite_predictions(lambda X: model.predict_proba(X)[:, 1], rows)
    assert ((predictions >= 0) & (predictions <= 1)).all()


def test_the_same_data_gives_the_same_model(train: pd.DataFrame, rows: pd.DataFrame) -> None:
    # the trees are seeded (random_state=0): training twice gives the same predictions
    check_same_seed_same_model(lambda seed: fit_model(train), rows)


def test_the_day_of_the_month_is_not_read(model: Pipeline, held_out: pd.DataFrame) -> None:
    def risk(table: pd.DataFrame) -> object:
        return model.predict_proba(features(table)[0])[:, 1]

    expect_invariant(risk, held_out.head(200), change={"day": lambda days: (days % 28) + 1})


def test_late_flights_rank_higher_at_every_airport(model: Pipeline, held_out: pd.DataFrame) -> None:
    X, y = features(held_out)
    labelled = X.assign(late=y.to_numpy())

    def proba(frame: pd.DataFrame) -> object:
        return model.predict_proba(frame[FEATURES])[:, 1]

    check_slice_quality(
        proba, labelled, label="late", by="origin", metric="auc", threshold=0.6, min_rows=100
    )
