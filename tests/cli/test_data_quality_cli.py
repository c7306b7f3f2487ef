"""``ctloop data stats|schema|validate|drift`` on real CSV and Parquet files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from tests.cli.conftest import Cli


@pytest.fixture
def flights() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame(
        {
            "distance": rng.uniform(100.0, 2500.0, 300).round(1),
            "carrier": rng.choice(["AA", "B6", "DL", "UA"], 300),
            "arr_delay": rng.normal(5.0, 30.0, 300).round(1),
        }
    )


@pytest.fixture
def good_csv(tmp_path: Path, flights: pd.DataFrame) -> Path:
    path = tmp_path / "flights.csv"
    flights.to_csv(path, index=False)
    return path


@pytest.fixture
def schema_file(cli: Cli, good_csv: Path, tmp_path: Path) -> Path:
    cli("data", "schema", str(good_csv), "-o", "schema.yaml")
    return tmp_path / "schema.yaml"


def test_stats_prints_a_table_per_column_and_json(cli: Cli, good_csv: Path) -> None:
    table = cli("data", "stats", str(good_csv)).stdout
    assert "flights.csv: 300 rows, 3 columns" in table
    assert "carrier" in table and "string" in table
    summary = json.loads(cli("data", "stats", str(good_csv), "--json").stdout)
    assert summary["rows"] == 300
    columns = {c["name"]: c for c in summary["columns"]}
    assert columns["carrier"]["distinct"] == 4
    assert 100.0 <= columns["distance"]["min"] < columns["distance"]["max"] <= 2500.0


def test_stats_reads_parquet(cli: Cli, tmp_path: Path, flights: pd.DataFrame) -> None:
    path = tmp_path / "flights.parquet"
    flights.to_parquet(path)
    summary = json.loads(cli("data", "stats", str(path), "--json").stdout)
    assert [c["type"] for c in summary["columns"]] == ["float", "string", "float"]


def test_schema_writes_readable_yaml_with_environments(cli: Cli, good_csv: Path) -> None:
    cli("data", "schema", str(good_csv), "-o", "s.yaml", "--environment", "serving=arr_delay")
    document = yaml.safe_load((cli.cwd / "s.yaml").read_text())
    assert document["environments"] == ["serving"]
    columns = {c["name"]: c for c in document["columns"]}
    assert columns["carrier"]["domain"] == ["AA", "B6", "DL", "UA"]
    assert columns["arr_delay"]["not_in_environments"] == ["serving"]
    printed = cli("data", "schema", str(good_csv)).stdout
    assert yaml.safe_load(printed)["columns"][0]["name"] == "distance"


def test_validate_passes_good_data(cli: Cli, good_csv: Path, schema_file: Path) -> None:
    result = cli("data", "validate", str(good_csv), "--schema", str(schema_file))
    assert "flights.csv matches the schema" in result.stdout


def test_validate_fails_on_a_renamed_column_and_a_string_in_a_number_column(
    cli: Cli, tmp_path: Path, flights: pd.DataFrame, schema_file: Path
) -> None:
    broken = flights.rename(columns={"carrier": "airline"}).astype({"distance": object})
    broken.loc[250, "distance"] = "far"
    path = tmp_path / "broken.csv"
    broken.to_csv(path, index=False)
    result = cli("data", "validate", str(path), "--schema", str(schema_file), check=False)
    assert result.returncode == 1
    assert "missing_column" in result.stdout and "carrier" in result.stdout
    assert "type_mismatch" in result.stdout and "type float" in result.stdout
    assert "breaks the schema" in result.stderr
    as_json = cli("data", "validate", str(path), "--schema", "schema.yaml", "--json", check=False)
    assert as_json.returncode == 1
    found = {(a["column"], a["kind"]) for a in json.loads(as_json.stdout)["anomalies"]}
    assert {("carrier", "missing_column"), ("distance", "type_mismatch")} <= found


def test_validate_shows_warnings_and_succeeds(
    cli: Cli, tmp_path: Path, flights: pd.DataFrame, schema_file: Path
) -> None:
    path = tmp_path / "extra.csv"
    flights.assign(note="x").to_csv(path, index=False)
    result = cli("data", "validate", str(path), "--schema", str(schema_file))
    assert "warning" in result.stdout and "unexpected_column" in result.stdout


def test_validate_serving_data_without_the_label(
    cli: Cli, tmp_path: Path, flights: pd.DataFrame, good_csv: Path
) -> None:
    cli("data", "schema", str(good_csv), "-o", "s.yaml", "--environment", "serving=arr_delay")
    path = tmp_path / "serving.csv"
    flights.drop(columns="arr_delay").to_csv(path, index=False)
    cli("data", "validate", str(path), "--schema", "s.yaml", "--environment", "serving")
    result = cli("data", "validate", str(path), "--schema", "s.yaml", check=False)
    assert result.returncode == 1 and "arr_delay" in result.stdout


def test_drift_tests_each_column_and_gives_a_verdict(
    cli: Cli, tmp_path: Path, flights: pd.DataFrame, good_csv: Path
) -> None:
    shifted = tmp_path / "march.csv"
    flights.assign(distance=flights["distance"] + 1500.0).to_csv(shifted, index=False)
    table = cli("data", "drift", str(good_csv), str(shifted)).stdout
    assert "distance" in table and "ks" in table and "yes" in table
    report = json.loads(cli("data", "drift", str(good_csv), str(shifted), "--json").stdout)
    drifted = {c["column"]: c["drifted"] for c in report["columns"]}
    assert drifted == {"distance": True, "carrier": False, "arr_delay": False}
    assert report["drifted"] is False  # 1 of 3 columns is below the default share of 0.5
    failing = cli(
        "data",
        "drift",
        str(good_csv),
        str(shifted),
        "--drift-share",
        "0.3",
        "--fail-on-drift",
        check=False,
    )
    assert failing.returncode == 1 and "drifted" in failing.stdout


def test_html_reports_are_written(
    cli: Cli, tmp_path: Path, good_csv: Path, schema_file: Path
) -> None:
    cli("data", "stats", str(good_csv), "--html", "stats.html")
    cli("data", "validate", str(good_csv), "--schema", str(schema_file), "--html", "v.html")
    cli("data", "drift", str(good_csv), str(good_csv), "--html", "out/drift.html")
    for name in ("stats.html", "v.html", "out/drift.html"):
        assert "<html" in (tmp_path / name).read_text().lower()


@pytest.fixture
def departures(tmp_path: Path) -> Path:
    """Parquet with a timestamp and a date column: 2013-01-01 00:00 UTC onwards."""
    frame = pd.DataFrame(
        {
            "departed": pd.date_range("2013-01-01", periods=97, freq="h"),
            "day": pd.date_range("2013-01-01", periods=97, freq="D").date,
            "delay": np.arange(97.0),
        }
    )
    path = tmp_path / "departures.parquet"
    frame.to_parquet(path)
    return path


def test_stats_show_timestamps_as_dates(cli: Cli, departures: Path) -> None:
    table = cli("data", "stats", str(departures)).stdout
    assert "2013-01-01 00:00:00" in table and "2013-01-05 00:00:00" in table  # departed
    assert "2013-04-07 00:00:00" in table  # the last day
    assert "e+09" not in table
    summary = json.loads(cli("data", "stats", str(departures), "--json").stdout)
    columns = {c["name"]: c for c in summary["columns"]}
    departed = columns["departed"]
    assert departed["min"] == "2013-01-01T00:00:00+00:00"
    assert departed["max"] == "2013-01-05T00:00:00+00:00"
    assert departed["mean"] == "2013-01-03T00:00:00+00:00"
    assert columns["day"]["max"] == "2013-04-07T00:00:00+00:00"
    assert columns["delay"]["max"] == 96.0
    cli("data", "stats", str(departures), "--html", "stats.html")
    page = (cli.cwd / "stats.html").read_text()
    assert "2013-01-05 00:00:00" in page and "1,357,344,000" not in page


def test_the_pandas_index_of_a_parquet_file_is_not_a_column(
    cli: Cli, tmp_path: Path, flights: pd.DataFrame, good_csv: Path, schema_file: Path
) -> None:
    filtered = flights[flights["distance"] > 1000.0]  # a filtered frame keeps its index
    path = tmp_path / "long_haul.parquet"
    filtered.to_parquet(path)
    assert "__index_level_0__" in pq.read_schema(path).names  # the index is stored
    summary = json.loads(cli("data", "stats", str(path), "--json").stdout)
    assert [c["name"] for c in summary["columns"]] == ["distance", "carrier", "arr_delay"]
    schema = yaml.safe_load(cli("data", "schema", str(path)).stdout)
    assert [c["name"] for c in schema["columns"]] == ["distance", "carrier", "arr_delay"]
    validated = cli("data", "validate", str(path), "--schema", str(schema_file), "--json")
    assert json.loads(validated.stdout)["anomalies"] == []
    drift = cli("data", "drift", str(good_csv), str(path))
    assert "__index_level_0__" not in drift.stdout and "not tested" not in drift.stdout
    as_json = json.loads(cli("data", "drift", str(good_csv), str(path), "--json").stdout)
    assert {c["column"] for c in as_json["columns"]} == {"distance", "carrier", "arr_delay"}


def test_a_missing_or_unknown_file_is_named(cli: Cli, tmp_path: Path) -> None:
    missing = cli("data", "stats", "nowhere.csv", check=False)
    assert missing.returncode == 1 and "'nowhere.csv' does not exist" in missing.stderr
    (tmp_path / "book.xlsx").write_bytes(b"PK")
    unknown = cli("data", "stats", "book.xlsx", check=False)
    assert "'book.xlsx' is neither CSV nor Parquet" in unknown.stderr
    no_schema = cli("data", "validate", "book.xlsx", "--schema", "none.yaml", check=False)
    assert "schema file 'none.yaml' does not exist" in no_schema.stderr


def test_the_cli_imports_no_data_library_until_a_command_needs_it() -> None:
    code = (
        "import sys, ctloop.cli.app; "
        "print(sorted(m for m in ('duckdb', 'pandas', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
