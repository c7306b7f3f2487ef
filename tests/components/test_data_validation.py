"""The data validation steps in real pipelines: good data passes, broken data stops the
run at ``validate`` with a message naming the column, and the steps after it are skipped."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ctloop import FilePath, pipeline, step
from ctloop.components import detect_drift, infer_schema, statistics, validate
from ctloop.data import Anomalies, DatasetStatistics, DriftReport, Schema, compute_statistics
from ctloop.data import infer_schema as infer_schema_from
from ctloop.errors import StepError
from ctloop.store.workspace import Workspace


@step
def load(path: FilePath) -> pd.DataFrame:
    return pd.read_csv(path)


@step
def train(data: pd.DataFrame) -> dict:
    return {"rows": len(data)}


@pipeline
def checked(
    path: FilePath = FilePath("flights.csv"), schema_path: FilePath = FilePath("schema.yaml")
) -> None:
    data = load(path)
    anomalies = validate(data, schema_path=schema_path)
    train(data).after(anomalies)


@pipeline
def learned(
    reference: FilePath = FilePath("reference.csv"), current: FilePath = FilePath("flights.csv")
) -> None:
    reference_stats = statistics(load(reference))
    schema = infer_schema(reference_stats)
    data = load(current)
    anomalies = validate(data, schema)
    detect_drift(reference_stats, data).after(anomalies)


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "flights.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def write_schema(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "schema.yaml"
    path.write_text(infer_schema_from(compute_statistics(frame)).to_yaml())
    return path


def fail(tmp_path: Path, frame: pd.DataFrame, good: pd.DataFrame) -> StepError:
    write(tmp_path, frame)
    write_schema(tmp_path, good)
    with pytest.raises(StepError) as caught:
        checked()
    return caught.value


def test_good_data_passes_and_the_steps_after_run(
    home: Path, tmp_path: Path, flights: pd.DataFrame
) -> None:
    write(tmp_path, flights)
    write_schema(tmp_path, flights)
    result = checked()
    assert result.step_status == {
        "load": "succeeded",
        "validate": "succeeded",
        "train": "succeeded",
    }
    anomalies = result.load("validate")
    assert isinstance(anomalies, Anomalies) and anomalies.ok
    assert result.outputs["validate"]["output"].type == "Anomalies"


def test_a_renamed_column_fails_validate_and_skips_what_follows(
    home: Path, tmp_path: Path, flights: pd.DataFrame
) -> None:
    error = fail(tmp_path, flights.rename(columns={"distance": "dist"}), flights)
    assert error.step == "validate"
    message = str(error)
    assert "column 'distance': missing_column: expected the column to be present" in message
    assert "column 'dist': unexpected_column" not in message  # a warning, not an error
    result = error.result  # type: ignore[attr-defined]
    assert result.step_status == {"load": "succeeded", "validate": "failed", "train": "skipped"}
    assert "validate" not in result.outputs


def test_a_string_in_a_numeric_column_names_the_column_and_both_types(
    home: Path, tmp_path: Path, flights: pd.DataFrame
) -> None:
    broken = flights.astype({"distance": object})
    broken.loc[7, "distance"] = "far"
    error = fail(tmp_path, broken, flights)
    assert "column 'distance': type_mismatch: expected type float, saw type string" in str(error)
    stores = Workspace.open()
    executions = {e.step: e for e in stores.metadata.list_executions(error.run_id)}
    assert executions["validate"].status == "failed"
    assert executions["train"].status == "skipped"
    events = stores.metadata.events_of_execution(executions["validate"].id)
    assert [e for e in events if e.kind == "output"] == []


def test_warnings_are_counted_and_shown_without_failing(
    home: Path, tmp_path: Path, flights: pd.DataFrame
) -> None:
    write(tmp_path, flights.assign(note="new"))
    write_schema(tmp_path, flights)
    result = checked()
    assert result.step_status["train"] == "succeeded"
    stores = Workspace.open()
    execution = next(
        e for e in stores.metadata.list_executions(result.run_id) if e.step == "validate"
    )
    metrics = {m.key: m.value for m in stores.metadata.get_metrics(result.run_id)}
    assert metrics["anomaly_warnings"] == 1.0
    assert execution.log_uri is not None
    log = stores.artifacts.read_object(execution.log_uri).decode()
    assert "warning: column 'note': unexpected_column" in log


def test_statistics_schema_and_drift_are_stored_as_typed_artifacts(
    home: Path, tmp_path: Path, flights: pd.DataFrame
) -> None:
    write(tmp_path, flights, "reference.csv")
    write(tmp_path, flights.iloc[:150])
    result = learned()
    assert result.step_status["detect_drift"] == "succeeded"
    types = {step: outputs["output"].type for step, outputs in result.outputs.items()}
    assert types == {
        "load": "Dataset",
        "load_2": "Dataset",
        "statistics": "Statistics",
        "infer_schema": "Schema",
        "validate": "Anomalies",
        "detect_drift": "DriftReport",
    }
    stats = result.load("statistics")
    assert isinstance(stats, DatasetStatistics) and stats.num_rows == 200
    schema = result.load("infer_schema")
    assert isinstance(schema, Schema) and schema["carrier"].domain == ("AA", "B6", "DL", "UA")
    report = result.load("detect_drift")
    assert isinstance(report, DriftReport) and not report.drifted


def test_an_inferred_schema_stops_data_from_another_source(
    home: Path, tmp_path: Path, flights: pd.DataFrame
) -> None:
    write(tmp_path, flights, "reference.csv")
    write(tmp_path, flights.assign(carrier="ZZ"))
    with pytest.raises(StepError, match="column 'carrier': out_of_domain"):
        learned()


def test_validate_needs_exactly_one_schema(flights: pd.DataFrame) -> None:
    with pytest.raises(Exception, match="exactly one schema"):
        validate(flights)
