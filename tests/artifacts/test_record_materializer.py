"""Record classes (statistics, schemas, anomalies, drift reports, a user's own) are stored
as one readable file and come back equal; classes from outside ctloop load only when the
user registered them."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import pytest
import yaml

from ctloop.artifacts import materializer_for
from ctloop.artifacts.records import register_record_class
from ctloop.data import compute_statistics, detect_drift, infer_schema, validate
from ctloop.errors import ArtifactError
from tests.artifacts.conftest import Workspace


@dataclass(frozen=True)
class Point:
    """A user's record class."""

    __ctloop_artifact__ = "Point"

    x: float
    y: float

    def to_dict(self) -> dict[str, Any]:
        return {"x": self.x, "y": self.y}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Point:
        return cls(data["x"], data["y"])


@pytest.fixture
def flights() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "distance": [1400.0, 719.5, None, 1065.0],
            "carrier": ["UA", "AA", "B6", "UA"],
            "late": [True, False, False, True],
        }
    )


def test_domain_records_round_trip_with_their_artifact_types(
    workspace: Workspace, flights: pd.DataFrame
) -> None:
    stats = compute_statistics(flights)
    schema = infer_schema(stats)
    values = {
        "Statistics": stats,
        "Schema": schema,
        "Anomalies": validate(flights.assign(carrier="XX"), schema),
        "DriftReport": detect_drift(stats, flights),
    }
    for artifact_type, value in values.items():
        record, back = workspace.round_trip(value)
        assert record.type == artifact_type
        assert back == value
        assert record.properties["class"] == f"{type(value).__module__}:{type(value).__name__}"


def test_a_schema_is_stored_as_readable_yaml(local: Workspace, flights: pd.DataFrame) -> None:
    schema = infer_schema(compute_statistics(flights))
    record = local.save(schema)
    assert [f.path for f in record.files] == ["schema.yaml"]
    text = local.store.get_bytes(record.files[0].digest).decode()
    assert yaml.safe_load(text)["columns"][1] == {
        "name": "carrier",
        "type": "string",
        "domain": ["AA", "B6", "UA"],
    }


def test_statistics_are_stored_as_json(local: Workspace, flights: pd.DataFrame) -> None:
    record = local.save(compute_statistics(flights))
    assert [f.path for f in record.files] == ["statistics.json"]


def test_non_finite_numbers_survive(local: Workspace) -> None:
    point = Point(math.inf, -math.inf)
    register_record_class(Point)
    record, back = local.round_trip(point)
    assert record.properties["encoding"] == "python"
    assert back == point


def test_a_registered_user_class_round_trips_as_a_record(local: Workspace) -> None:
    register_record_class(Point)
    record, back = local.round_trip(Point(1.0, 2.5))
    assert (record.type, record.properties["record_type"]) == ("Record", "Point")
    assert back == Point(1.0, 2.5)


def test_a_class_outside_ctloop_that_is_not_registered_is_not_imported(
    local: Workspace,
) -> None:
    record = local.save(Point(1.0, 2.0))
    forged = replace(record, properties={**record.properties, "class": "os:system"})
    with pytest.raises(ArtifactError, match="neither part of ctloop nor registered"):
        local.load(forged)


def test_a_ctloop_object_that_is_not_a_record_class_is_refused(
    local: Workspace, flights: pd.DataFrame
) -> None:
    record = local.save(compute_statistics(flights))
    forged = replace(record, properties={**record.properties, "class": "ctloop.config:Settings"})
    with pytest.raises(ArtifactError, match="is not a record class"):
        local.load(forged)


def test_only_classes_declaring_an_artifact_type_are_records() -> None:
    assert materializer_for(Point(0.0, 0.0)).name == "ctloop.record"
    assert materializer_for({"x": 1.0}).name == "ctloop.json"


def test_registering_something_that_is_not_a_record_class_says_what_is_missing() -> None:
    with pytest.raises(ArtifactError, match="from_dict"):
        register_record_class(type("Half", (), {"__ctloop_artifact__": "Half", "to_dict": None}))
