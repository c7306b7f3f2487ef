"""The flights example's data preparation and model logic, on a few hundred real rows."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

POST_DEPARTURE = {"dep_time", "dep_delay", "arr_time", "air_time", "arr_delay"}


def test_prepared_table_drops_cancelled_flights(
    table: pd.DataFrame, source: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    flights, _ = source
    assert len(table) == flights["arr_delay"].notna().sum()
    assert table["arr_delay"].notna().all()


def test_prepared_table_keeps_nothing_known_only_after_departure_but_the_target(
    table: pd.DataFrame,
) -> None:
    assert POST_DEPARTURE & set(table.columns) == {"arr_delay"}


def test_date_is_the_scheduled_departure_hour_in_new_york_time(table: pd.DataFrame) -> None:
    assert (table["date"].dt.month == table["month"]).all()
    assert (table["date"].dt.day == table["day"]).all()
    assert (table["date"].dt.hour == table["hour"]).all()


def test_weather_is_that_of_the_origin_airport_at_departure_hour(
    table: pd.DataFrame, source: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, weather = source
    row = table.iloc[150]
    at_origin = weather[
        (weather["origin"] == row["origin"])
        & (weather["month"] == row["month"])
        & (weather["day"] == row["day"])
        & (weather["hour"] == row["hour"])
    ]
    assert at_origin["temp"].iloc[0] == row["temp"]
    assert at_origin["pressure"].iloc[0] == pytest.approx(row["pressure"], nan_ok=True)


def test_label_is_arrival_more_than_15_minutes_late(flights_pipeline: ModuleType) -> None:
    rows = pd.DataFrame(
        {
            "date": pd.to_datetime(["2013-01-01 05:00"] * 4),
            "carrier": ["UA", "AA", "B6", "DL"],
            "origin": ["EWR", "JFK", "JFK", "LGA"],
            "dest": ["IAH", "MIA", "BQN", "ATL"],
            **{col: [0.0] * 4 for col in flights_pipeline.NUMERIC if col != "day_of_week"},
            "arr_delay": [-5.0, 15.0, 15.5, 120.0],
        }
    )
    _, y = flights_pipeline.features(rows)
    assert y.tolist() == [0, 0, 1, 1]


def test_features_hold_no_target_date_or_month(
    flights_pipeline: ModuleType, table: pd.DataFrame
) -> None:
    X, y = flights_pipeline.features(table)
    assert list(X.columns) == flights_pipeline.FEATURES
    assert not ({"month", "date", *POST_DEPARTURE} & set(X.columns))
    assert len(X) == len(y) == len(table)


def test_features_make_carrier_and_airports_categories(
    flights_pipeline: ModuleType, table: pd.DataFrame
) -> None:
    X, _ = flights_pipeline.features(table)
    for col in ("carrier", "origin", "dest"):
        assert isinstance(X[col].dtype, pd.CategoricalDtype)
    assert (X["day_of_week"] == table["date"].dt.day_of_week).all()


def test_split_trains_on_first_months_and_tests_on_a_later_one(
    flights_pipeline: ModuleType, table: pd.DataFrame
) -> None:
    train, test = flights_pipeline.split_by_date(table, train_months=2, test_month=4)
    assert set(train["month"]) == {1, 2}
    assert set(test["month"]) == {4}
    assert len(train) == (table["month"] <= 2).sum()
    assert len(test) == (table["month"] == 4).sum()


@pytest.mark.parametrize(("train_months", "test_month"), [(2, 2), (3, 1), (0, 1), (2, 13)])
def test_split_refuses_a_test_month_not_after_training(
    flights_pipeline: ModuleType, table: pd.DataFrame, train_months: int, test_month: int
) -> None:
    with pytest.raises(ValueError, match="later month"):
        flights_pipeline.split_by_date(table, train_months=train_months, test_month=test_month)


def test_model_fits_and_scores_a_later_month(
    flights_pipeline: ModuleType, table: pd.DataFrame
) -> None:
    train, test = flights_pipeline.split_by_date(table, train_months=2, test_month=3)
    model = flights_pipeline.fit_model(train, max_depth=3)
    metrics = flights_pipeline.score(model, test)
    assert metrics["rows"] == len(test)
    assert 0.0 <= metrics["auc"] <= 1.0
    assert metrics["late_rate"] == pytest.approx((test["arr_delay"] > 15).mean())


def test_table_is_written_atomically_and_then_up_to_date(
    prepare_data: ModuleType, table: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "flights.parquet"
    assert not prepare_data.is_up_to_date(path)
    prepare_data.write_atomically(table, path)
    assert os.listdir(tmp_path) == ["flights.parquet"]
    assert prepare_data.is_up_to_date(path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), table)
