"""A definitions file is collected whole, with what its definitions use, and each stored
view can be rebuilt from the spec the metadata store keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctloop.errors import FeatureDefinitionError
from ctloop.features._repo import load_definitions, to_spec, view_from_spec

FILE = """
from ctloop.features import Entity, FeatureService, FeatureView, Field

airport = Entity("origin")
route = Entity("route", join_keys=["origin", "dest"])
weather = FeatureView("weather", entities=[airport], source="w.parquet", timestamp="ts",
                      created="loaded", ttl="6h", fields=[Field("temp", float), Field("visib", int)])
routes = FeatureView("routes", entities=[route], source="SELECT * FROM 'r.csv'", timestamp="ts",
                     fields=[Field("distance", float)])
service = FeatureService("flights_v1", [weather, routes])
"""


def test_a_file_is_collected_with_what_it_uses_and_views_round_trip(tmp_path: Path) -> None:
    (tmp_path / "features.py").write_text(
        FILE.replace("service = ", 'only = FeatureService("x", [weather])\nservice = ')
    )
    repo = load_definitions(tmp_path / "features.py")
    assert [(kind, name) for kind, name, _ in repo.specs()] == [
        ("entity", "origin"),
        ("entity", "route"),
        ("feature_view", "routes"),
        ("feature_view", "weather"),
        ("feature_service", "flights_v1"),
        ("feature_service", "x"),
    ]
    entities = {name: spec for kind, name, spec in repo.specs() if kind == "entity"}
    for view in repo.views():
        assert view_from_spec(view.name, to_spec(view), entities) == view
    with pytest.raises(FeatureDefinitionError, match="uses entity 'origin', which is not defined"):
        view_from_spec("weather", to_spec(repo.views()[1]), {})


def test_two_different_definitions_of_one_name_are_refused(tmp_path: Path) -> None:
    (tmp_path / "features.py").write_text(
        FILE + '\nother = Entity("origin", join_keys=["airport"])\n'
    )
    with pytest.raises(
        FeatureDefinitionError, match="defines two different entities named 'origin'"
    ):
        load_definitions(tmp_path / "features.py")


def test_a_file_that_fails_or_defines_nothing_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('no data folder')\n")
    with pytest.raises(
        FeatureDefinitionError,
        match=r"broken\.py raised RuntimeError while loading: no data folder",
    ):
        load_definitions(tmp_path / "broken.py")
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(FeatureDefinitionError, match="defines no Entity"):
        load_definitions(tmp_path / "empty.py")
    with pytest.raises(FeatureDefinitionError, match="does not exist"):
        load_definitions(tmp_path / "missing.py")
