"""historical_features in a pipeline: a point-in-time training set whose artifact names
every feature view version and snapshots its source, and a model fitted on it that
records its feature service."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctloop import pipeline, step
from ctloop.components import fit, historical_features
from ctloop.errors import StepError
from ctloop.features._repo import load_definitions
from ctloop.store._features import DefinitionDraft
from ctloop.store.workspace import Workspace

DEFINITIONS = """
from ctloop.features import Entity, FeatureService, FeatureView, Field, on_demand

weather = FeatureView("weather", entities=[Entity("origin")], source="{source}",
                      timestamp="time_hour", ttl="6h",
                      fields=[Field("temp", float), Field("visib", int){extra}])

@on_demand(inputs=[weather], request=[Field("sched_dep_time", int)],
           outputs=[Field("cold_morning", bool)])
def departure(df):
    return df.assign(cold_morning=(df.temp < 3) & (df.sched_dep_time < 900))

flights_v1 = FeatureService("flights_v1", [weather, departure])
"""


def at(hour: int) -> datetime:
    return datetime(2024, 1, 1, hour)


@step
def load_flights(path: str) -> pa.Table:
    return pq.read_table(path)


@pipeline
def train_flights(path: str = "flights.parquet") -> None:
    train = historical_features(load_flights(path), service="flights_v1")
    fit(train, label="late", estimator="sklearn.linear_model.LogisticRegression",
        features=["temp", "visib", "sched_dep_time", "cold_morning"])  # fmt: skip


def apply(workspace: Workspace, folder: Path, extra: str = "") -> None:
    path = folder / "features.py"
    path.write_text(DEFINITIONS.format(source=folder / "weather.parquet", extra=extra))
    repo = load_definitions(path)
    workspace.features.apply([DefinitionDraft(*spec) for spec in repo.specs()])


@pytest.fixture
def workspace(home: Path, tmp_path: Path) -> Iterator[Workspace]:
    hours = [1, 3, 1, 5, 2, 4]
    pq.write_table(
        pa.table({
            "origin": ["EWR", "EWR", "JFK", "JFK", "LGA", "LGA"],
            "time_hour": [at(h) for h in hours],
            "temp": [1.0, 7.0, 2.0, 9.0, 4.0, 0.5], "visib": [10, 9, 8, 7, 6, 5],
            "wind": [1.0] * 6,
        }),
        tmp_path / "weather.parquet",
    )  # fmt: skip
    rows = 40
    pq.write_table(
        pa.table({
            "origin": [["EWR", "JFK", "LGA"][i % 3] for i in range(rows)],
            "event_timestamp": [at(2 + i % 4) for i in range(rows)],
            "sched_dep_time": [600 + 37 * i for i in range(rows)],
            "late": [i % 2 for i in range(rows)],
        }),
        tmp_path / "flights.parquet",
    )  # fmt: skip
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    with Workspace.open(url, artifacts=str(tmp_path / "artifacts")) as ws:
        apply(ws, tmp_path)
        yield ws


def test_the_training_set_names_each_view_version_and_its_source(
    workspace: Workspace, tmp_path: Path
) -> None:
    result = train_flights.run(workspace=workspace, path=str(tmp_path / "flights.parquet"))
    table = result.load("historical_features")
    # EWR at 02:00 sees its 01:00 row, JFK at 03:00 its 01:00 row (05:00 is later),
    # LGA at 04:00 its 04:00 row, EWR at 05:00 its 03:00 row
    first = table.slice(0, 4).to_pydict()
    assert first["temp"] == [1.0, 2.0, 0.5, 7.0]
    assert first["cold_morning"] == [True, True, True, False]
    assert table.num_rows == 40 and table.schema.field("visib").type == pa.int64()

    record = result.outputs["historical_features"]["output"]
    lineage = record.properties["features"]
    assert record.type == "Dataset" and lineage["name"] == "flights_v1"
    assert lineage["version"] == 1 and lineage["entity_keys"] == ["origin"]
    assert lineage["request"] == [{"name": "sched_dep_time", "dtype": "int64"}]
    versions = {v["name"]: (v["kind"], v["version"]) for v in lineage["views"]}
    assert versions == {"weather": ("feature_view", 1), "departure": ("on_demand", 1)}
    stored = workspace.features.get("weather", kind="feature_view")
    assert [v["digest"] for v in lineage["views"] if v["name"] == "weather"] == [stored.digest]

    [execution] = [
        e for e in workspace.metadata.list_executions(result.run_id)
        if e.step == "historical_features"
    ]  # fmt: skip
    inputs = {e.name: e.artifact_id for e in workspace.metadata.events_of_execution(execution.id)
              if e.kind == "input"}  # fmt: skip
    source = workspace.metadata.get_artifact(inputs["source_weather"])
    assert source.type == "DataSnapshot" and source.properties["root_name"] == "weather.parquet"

    model = result.load("fit")
    service = model.metadata["feature_service"]
    assert service["name"] == "flights_v1" and service["features"] == [
        "weather:temp", "weather:visib", "departure:cold_morning",
    ]  # fmt: skip
    assert [c.name for c in model.signature.inputs] == [
        "temp", "visib", "sched_dep_time", "cold_morning",
    ]  # fmt: skip


def test_a_new_view_version_is_what_the_next_training_set_names(
    workspace: Workspace, tmp_path: Path
) -> None:
    path = str(tmp_path / "flights.parquet")
    train_flights.run(workspace=workspace, path=path)
    apply(workspace, tmp_path, extra=', Field("wind", float)')
    second = train_flights.run(workspace=workspace, path=path)
    lineage = second.outputs["historical_features"]["output"].properties["features"]
    assert {v["name"]: v["version"] for v in lineage["views"]} == {"weather": 2, "departure": 1}
    assert "wind" in second.load("historical_features").column_names


def test_an_unknown_service_is_named(workspace: Workspace, tmp_path: Path) -> None:
    @pipeline
    def wrong(path: str = "") -> None:
        historical_features(load_flights(path), service="flights_v9")

    with pytest.raises(StepError, match=r"'flights_v9' is not applied.*flights_v1"):
        wrong.run(workspace=workspace, path=str(tmp_path / "flights.parquet"))
