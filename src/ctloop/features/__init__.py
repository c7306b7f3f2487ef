"""The feature store's domain: features defined once (entities, feature views, on-demand
transforms, feature services) and point-in-time correct training sets built from them.

>>> from ctloop.features import Entity, FeatureView, Field
>>> FeatureView("weather_hourly", entities=[Entity("origin")], source="weather.parquet",
...             timestamp="time_hour", fields=[Field("temp", float)]).join_keys
('origin',)
"""

from __future__ import annotations

from ctloop.features._definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    on_demand,
)
from ctloop.features._historical import get_historical_features
from ctloop.features._materialize import materialize, materialize_incremental
from ctloop.features._online import get_online_features
from ctloop.features._skew import SkewReport, feature_skew

__all__ = [
    "Entity",
    "FeatureService",
    "FeatureView",
    "Field",
    "OnDemandFeatureView",
    "SkewReport",
    "feature_skew",
    "get_historical_features",
    "get_online_features",
    "materialize",
    "materialize_incremental",
    "on_demand",
]
