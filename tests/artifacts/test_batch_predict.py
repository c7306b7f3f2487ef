"""Batch prediction: chunked Parquet and CSV input, pass-through columns, atomic output,
errors naming the column and row, and the ``batch_predict`` step's lineage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctloop.artifacts import load_value
from ctloop.artifacts.model import Model, predict_file
from ctloop.artifacts.model._onnx import compile_onnx
from ctloop.components import batch_predict
from ctloop.errors import BatchPredictionError
from ctloop.pipeline import FilePath, pipeline, step
from ctloop.registry import open_registry
from ctloop.store._lineage import upstream
from ctloop.store.workspace import Workspace
from tests.artifacts.test_onnx import fit_flights_like, flights_like


@pytest.fixture(scope="module")
def model() -> Model:
    X, y = flights_like(600, seed=1)
    return Model.from_estimator(fit_flights_like(X, y), X)


@pytest.fixture
def table() -> pd.DataFrame:
    """1,000 rows to score, as they would arrive: strings, an id, an extra column."""
    X, _ = flights_like(1000, seed=7)
    X = X.astype({c: "object" for c in ("carrier", "origin", "dest")})
    X.insert(0, "flight_id", np.arange(1000, 2000))
    X["tailnum"] = [f"N{i:04d}" for i in range(1000)]
    return X


def model_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["flight_id", "tailnum"])


def test_chunked_parquet_equals_in_memory_predict_row_for_row(
    model: Model, table: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), source, row_group_size=300)
    out = tmp_path / "out" / "preds.parquet"
    result = predict_file(
        model,
        source,
        out,
        id_column="flight_id",
        keep=["tailnum"],
        chunk_rows=250,
        model_version="flights@3",
    )
    assert (result.rows, result.runtime) == (1000, "native") and result.chunks >= 4
    written = pd.read_parquet(out)
    assert list(written.columns) == ["flight_id", "tailnum", "prediction", "model_version"]
    np.testing.assert_array_equal(written["flight_id"], table["flight_id"])
    np.testing.assert_array_equal(written["tailnum"], table["tailnum"])
    np.testing.assert_array_equal(written["prediction"], model.predict(model_columns(table)))
    assert set(written["model_version"]) == {"flights@3"}


def test_csv_input_streams_in_chunks(model: Model, table: pd.DataFrame, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    table.to_csv(source, index=False)
    result = predict_file(
        model, source, tmp_path / "preds.csv", id_column="flight_id", chunk_rows=128
    )
    written = pd.read_csv(tmp_path / "preds.csv")
    assert result.chunks == 8 and list(written["flight_id"]) == list(table["flight_id"])
    np.testing.assert_allclose(
        written["prediction"], model.predict(model_columns(table)), rtol=0, atol=1e-12
    )


def test_a_compiled_model_scores_with_onnx(
    model: Model, table: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    table.to_parquet(source)
    model.save(tmp_path / "model")
    compiled = Model.load(tmp_path / "model")
    assert compile_onnx(compiled, model_columns(table)).accepted
    result = predict_file(compiled, source, tmp_path / "out.parquet", chunk_rows=400)
    assert (result.runtime, result.fallbacks) == ("onnx", 0)
    written = pd.read_parquet(tmp_path / "out.parquet")
    expected = model.predict(model_columns(table))
    assert np.abs(written["prediction"].to_numpy() - expected).max() <= 1e-4


def test_a_missing_column_names_it_and_writes_nothing(
    model: Model, table: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    table.drop(columns=["distance"]).to_parquet(source)
    with pytest.raises(BatchPredictionError, match="'distance'"):
        predict_file(model, source, tmp_path / "out.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_a_column_of_the_wrong_type_names_column_and_row(
    model: Model, table: pd.DataFrame, tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    table.astype({"hour": str}).to_parquet(source)
    with pytest.raises(BatchPredictionError, match=r"column 'hour' .* row 0 \(chunk 0\)"):
        predict_file(model, source, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_a_bad_value_in_a_later_chunk_leaves_no_half_written_output(
    model: Model, table: pd.DataFrame, tmp_path: Path
) -> None:
    bad = table.astype({"hour": "float64"})
    bad.loc[733, "hour"] = 7.5
    source = tmp_path / "in.parquet"
    bad.to_parquet(source, row_group_size=250)
    with pytest.raises(BatchPredictionError, match=r"column 'hour' .* row 733 \(chunk 2\)"):
        predict_file(model, source, tmp_path / "out.parquet", chunk_rows=250)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_a_bad_csv_value_names_the_column(
    model: Model, table: pd.DataFrame, tmp_path: Path
) -> None:
    bad = table.astype({"distance": object})
    bad.loc[900, "distance"] = "far"
    source = tmp_path / "in.csv"
    bad.to_csv(source, index=False)
    with pytest.raises(BatchPredictionError, match=r"column 'distance'.*row 900 has 'far'"):
        predict_file(model, source, tmp_path / "out.parquet", chunk_rows=100)
    assert not (tmp_path / "out.parquet").exists()


# -- the batch_predict step -----------------------------------------------------------


SCORE_FILE = FilePath("score.parquet")


@step
def train_flights_like(rows: int = 400) -> Model:
    X, y = flights_like(rows, seed=1)
    return Model.from_estimator(fit_flights_like(X, y), X)


@pipeline
def train_and_score(path: FilePath = SCORE_FILE) -> None:
    model = train_flights_like()
    batch_predict(model, path, id_column="flight_id", chunk_rows=300)


@pipeline
def score_registered(path: FilePath = SCORE_FILE) -> None:
    batch_predict("delays@champion", path, id_column="flight_id")


def test_the_step_records_lineage_from_predictions_to_the_model(
    home: Path, table: pd.DataFrame, tmp_path: Path
) -> None:
    table.to_parquet(tmp_path / "score.parquet")
    result = train_and_score.run(path=tmp_path / "score.parquet")
    model_artifact = result.outputs["train_flights_like"]["output"]
    predictions = result.outputs["batch_predict"]["output"]
    stores = Workspace.open()
    graph = upstream(stores.metadata, predictions.id)
    assert model_artifact.id in graph.nodes and graph.nodes[model_artifact.id].label == "Model"
    path = load_value(predictions, stores.artifacts, cache_dir=tmp_path / "cache")
    written = pd.read_parquet(path)
    assert predictions.type == "Files" and len(written) == 1000
    np.testing.assert_array_equal(written["flight_id"], table["flight_id"])
    metrics = {m.key: m.value for m in stores.metadata.get_metrics(result.run_id)}
    assert metrics["rows"] == 1000 and metrics["chunks"] >= 4


def test_the_step_scores_with_a_registered_version_and_tags_it(
    home: Path, table: pd.DataFrame, tmp_path: Path
) -> None:
    trained = train_and_score.run(path=_write(table, tmp_path / "score.parquet"))
    model_artifact = trained.outputs["train_flights_like"]["output"]
    registry = open_registry()
    registry.register_version("delays", model_artifact.id)
    registry.set_alias("delays", "champion", 1)
    result = score_registered.run(path=tmp_path / "score.parquet")
    stores = Workspace.open()
    tags = {t.key: t.value for t in stores.metadata.get_tags(result.run_id)}
    assert tags["model_version"] == "delays@1"
    assert tags["model_artifact_id"] == model_artifact.id
    graph = upstream(stores.metadata, result.outputs["batch_predict"]["output"].id)
    assert graph.nodes[model_artifact.id].label == "Model"  # lineage, not only a tag
    path = load_value(
        result.outputs["batch_predict"]["output"], stores.artifacts, cache_dir=tmp_path / "c"
    )
    assert set(pd.read_parquet(path)["model_version"]) == {"delays@1"}


def _write(table: pd.DataFrame, path: Path) -> Path:
    table.to_parquet(path)
    return path
