"""Definitions are validated when built, with a sentence naming the object and the fix."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ctloop.errors import FeatureDefinitionError
from ctloop.features import Entity, FeatureService, FeatureView, Field, on_demand

airport = Entity("origin")


def view(**overrides: object) -> FeatureView:
    settings: dict[str, object] = {
        "entities": [airport], "source": "weather.parquet", "timestamp": "time_hour",
        "fields": [Field("temp", float)],
    }  # fmt: skip
    settings.update(overrides)
    return FeatureView("weather", **settings)  # type: ignore[arg-type]


def test_a_view_knows_its_keys_features_and_ttl() -> None:
    weather = view(
        ttl="6h", created="loaded_at", entities=[airport, Entity("route", ["carrier", "dest"])]
    )
    assert weather.join_keys == ("origin", "carrier", "dest")
    assert weather.feature_names == ("temp",)
    assert weather.ttl == timedelta(hours=6)


def test_a_ttl_that_is_not_a_duration_is_refused() -> None:
    with pytest.raises(
        FeatureDefinitionError, match="ttl of feature view 'weather' 'soon' is not a duration"
    ):
        view(ttl="soon")
    with pytest.raises(FeatureDefinitionError, match="not a positive duration"):
        view(ttl=timedelta(0))


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(FeatureDefinitionError, match="declares the column 'temp' twice"):
        view(fields=[Field("temp"), Field("temp")])
    with pytest.raises(FeatureDefinitionError, match="declares the column 'origin' twice"):
        view(fields=[Field("origin")])
    with pytest.raises(FeatureDefinitionError, match="declares the feature view 'weather' twice"):
        FeatureService("svc", [view(), view()])


def test_bad_names_types_and_empty_lists_are_refused() -> None:
    with pytest.raises(FeatureDefinitionError, match="field name 'wind speed' is not a valid name"):
        Field("wind speed")
    with pytest.raises(FeatureDefinitionError, match="field 'temp' has type 'decimal'"):
        Field("temp", "decimal")
    with pytest.raises(FeatureDefinitionError, match="needs at least one Field"):
        view(fields=[])
    with pytest.raises(FeatureDefinitionError, match="has no join keys"):
        Entity("origin", join_keys=[])
    with pytest.raises(FeatureDefinitionError, match="lists no feature views"):
        FeatureService("svc", [])


def test_on_demand_views_and_services_list_their_features() -> None:
    weather = view()

    @on_demand(
        inputs=[weather],
        request=[Field("sched_dep_time", int)],
        outputs=[Field("cold_morning", bool)],
    )
    def dep_features(df):  # type: ignore[no-untyped-def]
        return df.assign(cold_morning=(df.temp < 0) & (df.sched_dep_time < 900))

    assert dep_features.name == "dep_features"
    assert FeatureService("flights_v1", [weather, dep_features]).feature_refs == (
        "weather:temp",
        "dep_features:cold_morning",
    )
