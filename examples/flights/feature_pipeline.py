"""The flights model with its weather from the feature store: a point-in-time join to
train, the online store to serve.

The prepared table (``prepare_data.py``) already holds the weather of each flight's
departure hour, joined on the hour alone; here the weather comes from the feature view
``weather_hourly`` instead (``features.py``), as a flight would get it when the
prediction is made: the latest reading *published* by its scheduled departure and at
most 6 hours old. The model is the example's usual one, on the same inputs::

    flight_rows -> historical_features (flights_weather) -> split_last_days
                -> fit -> evaluate (per origin airport) -> gate -> register -> promote

It is trained on a feature service, so it records the service, and ``ctloop serve``
takes the flight's own fields and its airport and reads the weather itself::

    ctloop features apply examples/flights/features.py
    ctloop run examples/flights/feature_pipeline.py:training
    ctloop features materialize --incremental
    ctloop serve flights_weather@champion
    curl -s localhost:8080/predict -d '{"records": [{"origin": "EWR", "carrier": "UA",
        "dest": "ORD", "hour": 7, "sched_dep_time": 705, "sched_arr_time": 850,
        "day_of_week": 2, "distance": 719}]}'

``ctloop demo`` keeps training on the prepared table: it replays 2013, and an online
read takes only readings within ``ttl`` of the present, which 2013's are not.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pandas as pd

from ctloop import FilePath, pipeline, step
from ctloop.components import evaluate, fit, gate, historical_features, promote, register

if TYPE_CHECKING:
    import pyarrow as pa

try:  # run as a file by ctloop (its folder is on sys.path) or imported as a module
    from pipeline import CATEGORICAL, DELAY_MINUTES, ESTIMATOR, FEATURES, FIXED
except ImportError:  # pragma: no cover
    from examples.flights.pipeline import CATEGORICAL, DELAY_MINUTES, ESTIMATOR, FEATURES, FIXED

FLIGHT_INPUTS = ["hour", "sched_dep_time", "sched_arr_time", "distance"]
"""The model inputs a flight brings itself (with its carrier, airports and weekday)."""

LABEL = "late"


def departure_times(flights: pd.DataFrame) -> pd.Series:
    """Each flight's scheduled departure in UTC, from its New York ``date`` (the hour)
    and ``sched_dep_time`` (HHMM). The hour that occurs twice when clocks go back is
    ambiguous in local time: its flights get no time (``NaT``), so no weather.

    >>> departure_times(pd.DataFrame({"date": [pd.Timestamp("2013-07-01 09:00")],
    ...                               "sched_dep_time": [945]})).iloc[0]
    Timestamp('2013-07-01 13:45:00+0000', tz='UTC')
    """
    local = pd.to_datetime(flights["date"]) + pd.to_timedelta(
        flights["sched_dep_time"] % 100, unit="min"
    )
    zoned = local.dt.tz_localize("America/New_York", ambiguous="NaT", nonexistent="shift_forward")
    return zoned.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


@step
def flight_rows(path: FilePath, months: int = 3) -> pd.DataFrame:
    """The first ``months`` months of prepared flights as the feature store's entity
    rows: the airport (``origin``), the scheduled departure (``event_timestamp``), the
    flight's own inputs and the ``late`` label; the table's own weather left out."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; build it with `python examples/flights/prepare_data.py`"
        )
    flights = pd.read_parquet(path)
    flights = flights[flights["month"] <= months].reset_index(drop=True)
    return pd.DataFrame(
        {
            **{col: flights[col].astype("category") for col in CATEGORICAL},
            "day_of_week": pd.to_datetime(flights["date"]).dt.day_of_week.astype("int64"),
            **{col: flights[col] for col in FLIGHT_INPUTS},
            "event_timestamp": departure_times(flights),
            LABEL: (flights["arr_delay"] > DELAY_MINUTES).astype("int64"),
        }
    )


@step(outputs=("train", "test"))
def split_last_days(table: pa.Table, test_days: int = 14) -> tuple[pa.Table, pa.Table]:
    """The last ``test_days`` days of departures to test on, the rest to train on. Arrow
    tables in and out, so the training set still names the feature views it was built
    from (a flight without a time trains)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    times = table.column("event_timestamp")
    cutoff = pc.max(times).as_py() - timedelta(days=test_days)
    early = pc.fill_null(pc.less_equal(times, pa.scalar(cutoff, type=times.type)), True)
    return table.filter(early), table.filter(pc.invert(early))


@pipeline
def training(
    path: FilePath = FilePath("examples/flights/data/flights.parquet"),
    months: int = 3,
    test_days: int = 14,
    service: str = "flights_weather",
    model_name: str = "flights_weather",
    min_auc: float = 0.65,
) -> None:
    """Join each flight to the weather known at its departure, fit, evaluate per
    airport, gate on an AUC floor, register and promote."""
    rows = flight_rows(path, months=months)
    train, test = split_last_days(historical_features(rows, service=service), test_days=test_days)
    model = fit(train, label=LABEL, estimator=ESTIMATOR, params=FIXED, features=FEATURES)
    evaluation = evaluate(model, test, label=LABEL, slices=["origin"])
    blessing = gate(evaluation, model, absolute=[f"auc >= {min_auc}"])
    promote(register(model, blessing, name=model_name), reason="passed the AUC floor")


__all__ = ["departure_times", "training"]
