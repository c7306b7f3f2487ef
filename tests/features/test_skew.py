"""Training-serving skew: offline (historical) values against online values for a
sample of keys, on a SQLite workspace with a real definitions file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctloop.errors import FeatureError
from ctloop.features import feature_skew, materialize
from ctloop.store.workspace import Workspace
from tests.features.test_online import FIRST, NOW, weather_rows, workspace

__all__ = ["workspace"]


def test_freshly_materialized_values_show_no_skew(workspace: Workspace) -> None:
    materialize(workspace, ["weather"], end=NOW)
    report = feature_skew(workspace, "flights_v1", sample=10)
    assert report.passed
    assert [(f.view, f.feature, f.compared, f.mismatches) for f in report.features] == [
        ("weather", name, 3, 0) for name in ("temp", "visib", "station", "observed")
    ]


def test_a_source_rewritten_after_materialization_names_the_skewed_feature(
    workspace: Workspace, tmp_path: Path
) -> None:
    materialize(workspace, ["weather"], end=NOW)
    # EWR's latest temperature is corrected in the source; the online value is stale
    weather_rows(tmp_path / "weather.parquet", [("EWR", 1, 2.5, 9), *FIRST[2:], FIRST[0]])
    report = feature_skew(workspace, "flights_v1", sample=10)
    assert not report.passed
    shares = {f.feature: (f.mismatches, round(f.share, 3)) for f in report.features}
    assert shares == {"temp": (1, 0.333), "visib": (0, 0.0), "station": (0, 0.0),
                      "observed": (0, 0.0)}  # fmt: skip
    assert report.to_dict()["features"][0] == {
        "view": "weather", "feature": "temp", "compared": 3, "mismatches": 1, "share": 0.333333,
    }  # fmt: skip


def test_an_unmaterialized_view_and_an_empty_sample_are_named(workspace: Workspace) -> None:
    with pytest.raises(FeatureError, match="'weather' was never materialized"):
        feature_skew(workspace, "flights_v1")
    with pytest.raises(FeatureError, match="sample is 0"):
        feature_skew(workspace, "flights_v1", sample=0)
    with pytest.raises(FeatureError, match="nope"):
        feature_skew(workspace, "nope")
