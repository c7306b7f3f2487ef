"""``ctloop features apply / list / show`` through the real command, on a SQLite workspace."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cli.conftest import REPO, Cli

DEFINITIONS = """
from ctloop.features import Entity, FeatureService, FeatureView, Field, on_demand

airport = Entity("origin", join_keys=["origin"])
weather = FeatureView("weather_hourly", entities=[airport], source="weather.parquet",
                      timestamp="time_hour", ttl="{ttl}", fields=[Field("temp", float), Field("{extra}", int)])

@on_demand(inputs=[weather], request=[Field("sched_dep_time", int)], outputs=[Field("cold", bool)])
def dep_features(df):
    return df.assign(cold=df.temp < 0)

flights_v1 = FeatureService("flights_v1", [weather, dep_features])
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env["CTLOOP_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    pq.write_table(
        pa.table(
            {"origin": ["EWR"], "time_hour": [datetime(2024, 1, 1)], "temp": [1.0], "visib": [10]}
        ),
        tmp_path / "weather.parquet",
    )
    return Cli(tmp_path, env)


def write(cli: Cli, ttl: str = "6h", extra: str = "visib") -> str:
    (cli.cwd / "features.py").write_text(DEFINITIONS.format(ttl=ttl, extra=extra))
    return "features.py"


def test_apply_versions_only_what_changed_and_readers_see_it_at_once(cli: Cli) -> None:
    first = cli("features", "apply", write(cli))
    assert "feature view weather_hourly: version 1" in first.stdout
    assert "4 of 4 definitions changed" in first.stderr
    assert "0 of 4 definitions changed" in cli("features", "apply", write(cli)).stderr
    second = cli("features", "apply", write(cli, ttl="2h"), "--json")
    assert [(r["name"], r["version"]) for r in json.loads(second.stdout)] == [("weather_hourly", 2)]
    listed = json.loads(cli("features", "list", "--json").stdout)
    assert [(r["kind"], r["name"], r["version"]) for r in listed] == [
        ("entity", "origin", 1),
        ("feature_view", "weather_hourly", 2),
        ("on_demand", "dep_features", 1),
        ("feature_service", "flights_v1", 1),
    ]
    shown = json.loads(cli("features", "show", "weather_hourly", "--version", "1").stdout)
    assert shown["spec"]["ttl_seconds"] == 6 * 3600
    assert "flights_v1" in cli("features", "list").stdout


def test_a_view_whose_source_lacks_a_column_applies_nothing(cli: Cli) -> None:
    failed = cli("features", "apply", write(cli, extra="wind"), check=False)
    assert failed.returncode != 0
    assert "feature view 'weather_hourly' declares column 'wind'" in failed.stderr
    assert json.loads(cli("features", "list", "--json").stdout) == []
    missing = cli("features", "show", "weather_hourly", check=False)
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_one_wrongly_typed_view_among_good_ones_applies_nothing(cli: Cli) -> None:
    text = DEFINITIONS.format(ttl="6h", extra="visib") + (
        '\nvisibility = FeatureView("visibility", entities=[airport], source="weather.parquet",'
        '\n                         timestamp="time_hour", fields=[Field("visib", str)])\n'
    )
    (cli.cwd / "features.py").write_text(text)
    failed = cli("features", "apply", "features.py", check=False)
    assert failed.returncode != 0
    assert (
        "column 'visib' of feature view 'visibility' is BIGINT in its source 'weather.parquet', "
        "which cannot be read as string; fix the declared type or the source"
    ) in " ".join(failed.stderr.split())
    assert "Traceback" not in failed.stderr
    assert json.loads(cli("features", "list", "--json").stdout) == []


def test_materialize_then_get_online_features_by_service_and_by_reference(cli: Cli) -> None:
    cli("features", "apply", write(cli, ttl="100000d"))
    first = cli("features", "materialize", "--end", "2024-01-02")
    assert (
        "weather_hourly: 1 keys read, 1 written (the first row to 2024-01-02T00:00:00+00:00)"
        in first.stdout
    )
    again = json.loads(cli("features", "materialize", "--incremental", "--json").stdout)
    assert [(r["view"], r["rows_read"], r["start"][:10]) for r in again] == [
        ("weather_hourly", 0, "2024-01-02")
    ]
    got = cli("features", "get", "--entity", "origin=EWR,sched_dep_time=700", "--entity",
              "origin=SFO,sched_dep_time=800", "--service", "flights_v1", "--json")  # fmt: skip
    assert json.loads(got.stdout) == {
        "origin": ["EWR", "SFO"], "sched_dep_time": ["700", "800"], "temp": [1.0, None],
        "visib": [10, None], "cold": [False, False],
    }  # fmt: skip
    table = cli("features", "get", "--entity", "origin=EWR", "weather_hourly:temp").stdout
    assert "temp" in table and "1.0" in table


def test_materialize_and_get_mistakes_are_one_sentence(cli: Cli) -> None:
    cli("features", "apply", write(cli))
    cases = [
        (("materialize", "--start", "yesterday"), "'yesterday' is not a date or time"),
        (("materialize", "--incremental", "--start", "2024-01-01"), "drop --start or --incremental"),
        (("materialize", "nope"), "feature view 'nope' is not applied"),
        (("get", "--entity", "origin", "weather_hourly:temp"), "is not a list of column=value pairs"),
        (("get", "--entity", "origin=EWR", "weather_hourly:tmp"), "has no feature 'tmp'"),
        (("get", "--entity", "origin=EWR"), "give either FEATURES"),
        (("get", "weather_hourly:temp"), "at least one --entity"),
    ]  # fmt: skip
    for args, message in cases:
        failed = cli("features", *args, check=False)
        assert failed.returncode != 0, args
        assert message in failed.stderr, (args, failed.stderr)
        assert "Traceback" not in failed.stderr


def test_skew_passes_when_fresh_and_names_a_feature_whose_source_changed(cli: Cli) -> None:
    cli("features", "apply", write(cli, ttl="100000d"))
    never = cli("features", "skew", "flights_v1", check=False)
    assert never.returncode == 1 and "was never materialized" in never.stderr
    assert "Traceback" not in never.stderr
    cli("features", "materialize", "--end", "2024-01-02")
    fresh = json.loads(cli("features", "skew", "flights_v1", "--json").stdout)
    assert fresh["passed"] is True
    assert [(f["feature"], f["compared"], f["mismatches"]) for f in fresh["features"]] == [
        ("temp", 1, 0), ("visib", 1, 0),
    ]  # fmt: skip
    pq.write_table(
        pa.table(
            {"origin": ["EWR"], "time_hour": [datetime(2024, 1, 1)], "temp": [4.0], "visib": [10]}
        ),
        cli.cwd / "weather.parquet",
    )
    skewed = cli("features", "skew", "flights_v1", check=False)
    assert skewed.returncode == 1
    row = next(line for line in skewed.stdout.splitlines() if "temp" in line)
    assert "weather_hourly" in row and "100.0%" in row
    bad = cli("features", "skew", "flights_v1", "--sample", "0", check=False)
    assert bad.returncode == 2 and "--sample" in bad.stderr
