"""Training sets from Parquet, CSV and DuckDB sources: values as of each row, every entity
row kept with its types, on-demand features computed, bad input named."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from ctloop.errors import FeatureDefinitionError, FeatureError
from ctloop.features import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    get_historical_features,
    on_demand,
)

airport = Entity("origin")


def at(hour: int) -> datetime:
    return datetime(2024, 1, 1, hour)


@pytest.fixture
def weather_table() -> pa.Table:
    return pa.table({
        "origin": ["EWR", "EWR", "EWR", "JFK"],
        "time_hour": [at(1), at(3), at(3), at(2)],
        "loaded_at": [at(1), at(3), at(4), at(9)],
        "temp": [1.5, 3.0, 3.5, 10.0],
        "visib": pa.array([10, 8, 7, 5], pa.int64()),
    })  # fmt: skip


def weather_view(source: str, **overrides: object) -> FeatureView:
    settings: dict[str, object] = {
        "entities": [airport], "source": source, "timestamp": "time_hour", "created": "loaded_at",
        "ttl": "3h", "fields": [Field("temp", float), Field("visib", int)],
    }  # fmt: skip
    settings.update(overrides)
    return FeatureView("weather", **settings)  # type: ignore[arg-type]


flights = pa.table({
    "origin": ["EWR", "EWR", "EWR", "JFK", "LGA", "JFK"],
    "event_timestamp": [at(2), at(3), at(5), at(10), at(3), at(3)],
    "delay": pa.array([1, 2, 3, 4, 5, 6], pa.int32()),
})  # fmt: skip


@pytest.mark.parametrize("kind", ["parquet", "csv", "sql"])
def test_each_row_gets_the_values_known_at_its_time(
    tmp_path: Path, weather_table: pa.Table, kind: str
) -> None:
    if kind == "csv":
        pacsv.write_csv(weather_table, tmp_path / "w.csv")
        source = str(tmp_path / "w.csv")
    else:
        pq.write_table(weather_table, tmp_path / "w.parquet")
        source = str(tmp_path / "w.parquet")
        source = f"SELECT * FROM read_parquet('{source}')" if kind == "sql" else source
    result = get_historical_features(flights, [weather_view(source)])
    # 02:00 sees 01:00; 03:00 sees 03:00 loaded at 03:00 (not the one loaded at 04:00);
    # 05:00 sees the later-loaded 03:00 row; JFK's row, loaded at 09:00, is past its ttl at
    # 10:00 and unknown at 03:00; LGA has no rows.
    assert result.column("temp").to_pylist() == [1.5, 3.0, 3.5, None, None, None]
    assert result.column("visib").to_pylist() == [10, 8, 7, None, None, None]
    assert result.schema.field("visib").type == pa.int64()
    assert result.select(flights.column_names).equals(flights)


def test_feasts_rule_lets_rows_created_later_break_ties(
    tmp_path: Path, weather_table: pa.Table
) -> None:
    pq.write_table(weather_table, tmp_path / "w.parquet")
    view = weather_view(str(tmp_path / "w.parquet"), ttl=None)
    result = get_historical_features(flights, [view], created_as_tiebreak_only=True)
    assert result.column("temp").to_pylist() == [1.5, 3.5, 3.5, 10.0, None, 10.0]


def test_on_demand_features_use_request_fields_and_a_service(
    tmp_path: Path, weather_table: pa.Table
) -> None:
    pq.write_table(weather_table, tmp_path / "w.parquet")
    weather = weather_view(str(tmp_path / "w.parquet"))

    @on_demand(
        inputs=[weather], request=[Field("delay", int)], outputs=[Field("temp_plus_delay", float)]
    )
    def adjusted(df):  # type: ignore[no-untyped-def]
        return df.assign(temp_plus_delay=df.temp + df.delay)

    result = get_historical_features(flights, FeatureService("flights_v1", [adjusted]))
    assert result.column_names == [*flights.column_names, "temp_plus_delay"]
    assert result.column("temp_plus_delay").to_pylist()[:3] == [2.5, 5.0, 6.5]
    texts = [str(v) for v in flights.column("delay").to_pylist()]
    typed = get_historical_features(flights.set_column(2, "delay", pa.array(texts)), [adjusted])
    assert typed.column("temp_plus_delay").to_pylist()[:3] == [2.5, 5.0, 6.5]
    texts[1] = "late"
    with pytest.raises(
        FeatureError,
        match="request field 'delay' of on-demand feature view 'adjusted' is string in the "
        r"entity frame and cannot be read as int64 \(.*\); fix the column",
    ):
        get_historical_features(flights.set_column(2, "delay", pa.array(texts)), [adjusted])


def test_bad_input_is_named(tmp_path: Path, weather_table: pa.Table) -> None:
    pq.write_table(weather_table, tmp_path / "w.parquet")
    source = str(tmp_path / "w.parquet")
    with pytest.raises(FeatureDefinitionError, match="declares column 'wind', but its source"):
        get_historical_features(flights, [weather_view(source, fields=[Field("wind")])])
    with pytest.raises(FeatureError, match="lacks join key 'origin' of feature view 'weather'"):
        get_historical_features(flights.drop(["origin"]), [weather_view(source)])
    with pytest.raises(FeatureError, match="has no column 'event_timestamp'"):
        get_historical_features(flights.drop(["event_timestamp"]), [weather_view(source)])
    with pytest.raises(FeatureDefinitionError, match="cannot read its source"):
        get_historical_features(flights, [weather_view(str(tmp_path / "missing.parquet"))])
    with pytest.raises(FeatureDefinitionError, match="which the entity frame already has"):
        get_historical_features(flights, [weather_view(source, fields=[Field("delay")])])


def test_join_keys_of_different_types_are_named(tmp_path: Path, weather_table: pa.Table) -> None:
    pq.write_table(weather_table, tmp_path / "w.parquet")
    source = str(tmp_path / "w.parquet")
    for values, kind in [([datetime(2024, 1, 1)], "TIMESTAMP"), ([7], "BIGINT")]:
        typed = flights.set_column(0, "origin", pa.array(values * flights.num_rows))
        with pytest.raises(
            FeatureError,
            match=f"join key 'origin' is {kind} in the entity frame but VARCHAR in the source "
            "of feature view 'weather', so no row would match; cast the entity frame's column",
        ):
            get_historical_features(typed, [weather_view(source)])


def test_a_declared_type_the_source_cannot_hold_is_named(
    tmp_path: Path, weather_table: pa.Table
) -> None:
    pq.write_table(
        weather_table.append_column("station", pa.array(["a"] * 4)), tmp_path / "w.parquet"
    )
    source = str(tmp_path / "w.parquet")
    with pytest.raises(
        FeatureDefinitionError,
        match=r"column 'station' of feature view 'weather' is VARCHAR in its source .*"
        "which cannot be read as float64; fix the declared type or the source",
    ):
        get_historical_features(flights, [weather_view(source, fields=[Field("station", float)])])
    with pytest.raises(
        FeatureDefinitionError, match=r"column 'station' .* cannot be read as timestamp"
    ):
        get_historical_features(flights, [weather_view(source, timestamp="station")])


def test_an_entity_time_column_that_holds_no_times_is_named(
    tmp_path: Path, weather_table: pa.Table
) -> None:
    pq.write_table(weather_table, tmp_path / "w.parquet")
    view = weather_view(str(tmp_path / "w.parquet"))
    epoch = flights.set_column(1, "event_timestamp", pa.array(range(flights.num_rows), pa.int64()))
    with pytest.raises(
        FeatureError, match="time column 'event_timestamp' is BIGINT, not a timestamp; convert it"
    ):
        get_historical_features(epoch, [view])
    texts = ["2024-01-01 02:00", "soon", *["2024-01-01"] * (flights.num_rows - 2)]
    worded = flights.set_column(1, "event_timestamp", pa.array(texts))
    with pytest.raises(FeatureError, match="'event_timestamp' holds 'soon', which is not a time"):
        get_historical_features(worded, [view])
    texts[1] = "2024-01-01 03:00"
    iso = get_historical_features(flights.set_column(1, "event_timestamp", pa.array(texts)), [view])
    assert iso.column("temp").to_pylist()[:2] == [1.5, 3.0]
