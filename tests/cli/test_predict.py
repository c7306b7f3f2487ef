"""``ctloop predict`` and ``ctloop models compile`` against a real registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop.artifacts.model import Model
from ctloop.registry import open_registry
from tests.artifacts.test_batch_predict import train_and_score
from tests.artifacts.test_onnx import fit_flights_like, flights_like
from tests.cli.conftest import Cli, damage_parquet_pages


@pytest.fixture
def registered(cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pd.DataFrame:
    """``delays@champion`` (version 1) in the CLI's home; returns the table to score."""
    monkeypatch.setenv("CTLOOP_HOME", cli.env["CTLOOP_HOME"])
    for name in ("CTLOOP_STORE_URL", "CTLOOP_ARTIFACT_URL", "CTLOOP_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    X, _ = flights_like(500, seed=9)
    X = X.astype({c: "object" for c in ("carrier", "origin", "dest")})
    X.insert(0, "flight_id", np.arange(500))
    X.to_parquet(tmp_path / "score.parquet")
    result = train_and_score.run(path=tmp_path / "score.parquet")
    registry = open_registry()
    registry.register_version("delays", result.outputs["train_flights_like"]["output"].id)
    registry.set_alias("delays", "champion", 1)
    return X


def expected(table: pd.DataFrame) -> np.ndarray:
    X, y = flights_like(400, seed=1)  # the training step's data
    model = Model.from_estimator(fit_flights_like(X, y), X)
    return model.predict(table.drop(columns=["flight_id"]))


def test_predict_writes_predictions_with_ids(cli: Cli, registered: pd.DataFrame) -> None:
    proc = cli(
        "predict",
        "delays@champion",
        "--input",
        "score.parquet",
        "--output",
        "preds.parquet",
        "--id-column",
        "flight_id",
        "--chunk-rows",
        "200",
        "--json",
    )
    report = json.loads(proc.stdout)
    assert (report["rows"], report["chunks"], report["model_version"]) == (500, 3, "delays@1")
    written = pd.read_parquet(cli.cwd / "preds.parquet")
    assert list(written["flight_id"]) == list(range(500))
    np.testing.assert_allclose(written["prediction"], expected(registered), atol=1e-12)


def test_predict_names_a_missing_column_and_writes_nothing(
    cli: Cli, registered: pd.DataFrame
) -> None:
    registered.drop(columns=["hour"]).to_parquet(cli.cwd / "bad.parquet")
    proc = cli(
        "predict", "delays@champion", "-i", "bad.parquet", "-o", "preds.parquet", check=False
    )
    assert proc.returncode == 1 and "'hour'" in proc.stderr
    assert not (cli.cwd / "preds.parquet").exists()


@pytest.mark.parametrize("record", [False, True])
def test_predict_calls_a_damaged_parquet_file_damaged(
    cli: Cli, registered: pd.DataFrame, record: bool
) -> None:
    rows = 30_000
    X, _ = flights_like(rows, seed=4)
    X = X.astype({c: "object" for c in ("carrier", "origin", "dest")})
    X.insert(0, "flight_id", np.arange(rows))
    path = cli.cwd / "damaged.parquet"
    X.to_parquet(path, row_group_size=rows // 3)
    damage_parquet_pages(path)
    extra = ["--record"] if record else []
    proc = cli(
        "predict", "delays@champion", "-i", str(path), "-o", "preds.parquet", *extra, check=False
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1, proc.stderr
    assert "damaged.parquet" in error[0] and "is damaged" in error[0]
    assert not (cli.cwd / "preds.parquet").exists()


def test_compile_registers_an_onnx_version_that_predict_uses(
    cli: Cli, registered: pd.DataFrame
) -> None:
    proc = cli("models", "compile", "delays@1", "--validation", "score.parquet", "--json")
    report = json.loads(proc.stdout)
    assert report["accepted"] and report["max_abs_diff"] <= 1e-4
    assert report["new_version"] == "delays@2"
    proc = cli(
        "predict",
        "delays@2",
        "-i",
        "score.parquet",
        "-o",
        "preds.parquet",
        "--runtime",
        "onnx",
        "--json",
    )
    assert json.loads(proc.stdout)["runtime"] == "onnx"
    written = pd.read_parquet(cli.cwd / "preds.parquet")
    assert np.abs(written["prediction"].to_numpy() - expected(registered)).max() <= 1e-4


def test_predict_record_runs_a_pipeline(cli: Cli, registered: pd.DataFrame) -> None:
    proc = cli(
        "predict",
        "delays@champion",
        "-i",
        "score.parquet",
        "-o",
        "preds.parquet",
        "--record",
        "--json",
    )
    report = json.loads(proc.stdout)
    assert report["status"] == "succeeded" and report["artifact_id"]
    assert len(pd.read_parquet(cli.cwd / "preds.parquet")) == 500
    shown = cli("runs", "show", report["run_id"])
    assert "batch_predict" in shown.stdout
