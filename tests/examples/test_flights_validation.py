"""The flights pipeline validates its input before training: a real sample passes, a
broken copy stops the run at ``validate`` with a message naming the column."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from ctloop.errors import StepError
from tests.examples.conftest import FLIGHTS_EXAMPLE

SCHEMA = FLIGHTS_EXAMPLE / "schema.yaml"


def run_on(flights_pipeline: ModuleType, frame: pd.DataFrame, tmp_path: Path) -> object:
    path = tmp_path / "flights.parquet"
    frame.to_parquet(path)
    return flights_pipeline.training.run(path=path, schema_path=SCHEMA, n_trials=2, min_auc=0.0)


def failure(flights_pipeline: ModuleType, frame: pd.DataFrame, tmp_path: Path) -> StepError:
    with pytest.raises(StepError) as caught:
        run_on(flights_pipeline, frame, tmp_path)
    error = caught.value
    assert error.step == "validate"
    result = error.result  # type: ignore[attr-defined]
    for later in ("tune", "fit", "evaluate", "gate", "register"):
        assert result.step_status[later] == "skipped"
    return error


def test_the_real_sample_passes_validation_and_trains(
    home: Path, tmp_path: Path, flights_pipeline: ModuleType, table: pd.DataFrame
) -> None:
    result = run_on(flights_pipeline, table, tmp_path)
    assert set(result.step_status.values()) == {"succeeded"}  # type: ignore[attr-defined]


def test_a_renamed_column_stops_the_run_before_training(
    home: Path, tmp_path: Path, flights_pipeline: ModuleType, table: pd.DataFrame
) -> None:
    error = failure(flights_pipeline, table.rename(columns={"carrier": "airline"}), tmp_path)
    assert "column 'carrier': missing_column" in str(error)


def test_text_in_the_distance_column_stops_the_run_before_training(
    home: Path, tmp_path: Path, flights_pipeline: ModuleType, table: pd.DataFrame
) -> None:
    broken = table.astype({"distance": str})
    broken.loc[3, "distance"] = "far"
    error = failure(flights_pipeline, broken, tmp_path)
    assert "column 'distance': type_mismatch: expected type int, saw type string" in str(error)


def test_the_checked_in_schema_accepts_the_full_prepared_table(prepare_data: ModuleType) -> None:
    from ctloop.data import Schema, validate

    flights, weather = prepare_data.read_source()
    full = prepare_data.build_table(flights, weather)  # all of 2013, as `make demo` builds it
    anomalies = validate(full, Schema.from_yaml(SCHEMA.read_text()))
    assert anomalies.ok, [a.description for a in anomalies.errors]
