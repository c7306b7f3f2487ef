"""A model's Transform: stored with the model (class by reference, state as files),
applied by ``Model.predict_request`` and batch prediction, its failures told apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ctloop.artifacts.model import Model, Transform, predict_file
from ctloop.errors import (
    BatchPredictionError,
    ModelError,
    SignatureError,
    TransformError,
    TransformInputError,
)
from tests.serve import _models, _transforms


def test_the_transform_is_stored_by_reference_with_its_state_as_files(tmp_path: Path) -> None:
    _transforms.transformed().save(tmp_path / "model")
    description = json.loads((tmp_path / "model" / "model.json").read_text())
    assert description["transform"] == {"class": "tests.serve._transforms:Renaming"}
    assert (tmp_path / "model" / "transform" / "cut.txt").read_text() == "0.4"
    loaded = Model.load(tmp_path / "model")
    assert isinstance(loaded.transform, _transforms.Renaming) and loaded.transform.cut == 0.4
    answer = loaded.predict_request(_transforms.RAW)
    expected = _transforms.expected()
    assert answer["late"].tolist() == expected["late"]
    assert answer["probability"].tolist() == pytest.approx(expected["probability"], abs=1e-12)
    # the estimator itself is unchanged: evaluation and monitoring see the model's columns
    assert loaded.predict(_transforms.PREPARED).tolist() == pytest.approx(
        expected["probability"], abs=1e-12
    )


def test_a_model_without_a_transform_answers_its_prediction() -> None:
    model = _models.classifier()
    answer = model.predict_request(_transforms.PREPARED.to_dict("records"))
    assert list(answer) == ["prediction"]
    assert model.answer(answer["prediction"], []) is None


class Local(Transform):
    pass


def test_a_transform_that_cannot_be_loaded_elsewhere_is_refused_by_name(tmp_path: Path) -> None:
    class Inner(Transform):
        pass

    with pytest.raises(ModelError, match="Inner is defined in a function"):
        _transforms.transformed(Inner()).save(tmp_path / "inner")
    Local.__module__ = "__main__"
    try:
        with pytest.raises(ModelError, match="Local is defined in a script"):
            _transforms.transformed(Local()).save(tmp_path / "script")
    finally:
        Local.__module__ = __name__
    _transforms.transformed().save(tmp_path / "gone")
    model_json = tmp_path / "gone" / "model.json"
    description = json.loads(model_json.read_text())
    description["transform"] = {"class": "no_such_package.transforms:Renaming"}
    model_json.write_text(json.dumps(description))
    with pytest.raises(ModelError, match=r"no_such_package.transforms:Renaming cannot be imp"):
        Model.load(tmp_path / "gone")
    description["transform"] = {"class": "tests.serve._models:Constant"}
    model_json.write_text(json.dumps(description))
    with pytest.raises(ModelError, match="is not a ctloop Transform; refusing"):
        Model.load(tmp_path / "gone")


def test_input_faults_and_code_faults_are_told_apart() -> None:
    model = _transforms.transformed()
    refused = [{**_transforms.RAW[0], "colour": 7}]
    with pytest.raises(TransformInputError, match="'colour' must be a colour name") as info:
        model.prepare_request(refused)
    assert info.value.field == "colour"
    lacking = [_transforms.RAW[0], {k: v for k, v in _transforms.RAW[1].items() if k != "x"}]
    with pytest.raises(TransformInputError, match="row 1 has no field 'x'") as info:
        model.prepare_request(lacking)
    assert info.value.field == "x"
    with pytest.raises(TransformInputError, match="knows no value 'maybe' for field 'flag'"):
        model.prepare_request([{**_transforms.RAW[0], "flag": "maybe"}])
    with pytest.raises(TransformError, match=r"failed in preprocess on 1 row\(s\): ValueError"):
        model.prepare_request([{**_transforms.RAW[0], "x": "fast"}])
    with pytest.raises(SignatureError, match="column 'n' expects integer") as info:
        model.prepare_request([{**_transforms.RAW[0], "count": "3 flights"}])
    assert "after the model's transform tests.serve._transforms:Renaming" in str(info.value)
    broken = _transforms.transformed(_transforms.BrokenAnswer())
    with pytest.raises(TransformError, match=r"returned 1 value\(s\) for output 'late' and 3"):
        broken.predict_request(_transforms.RAW)


class NotAFrame(Transform):
    def preprocess(self, records: list[dict[str, Any]]) -> Any:
        return records


class DropsRows(Transform):
    def preprocess(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        return pd.DataFrame.from_records(records[:1])


def test_what_preprocess_returns_must_be_one_row_per_record() -> None:
    with pytest.raises(TransformError, match="returned list, not a pandas DataFrame"):
        _transforms.transformed(NotAFrame()).prepare_request(_transforms.RAW)
    with pytest.raises(TransformError, match=r"returned 1 row\(s\) for 3 record\(s\)"):
        _transforms.transformed(DropsRows()).prepare_request(_transforms.RAW)


def test_batch_prediction_applies_the_transform_to_every_column_of_the_input(
    tmp_path: Path,
) -> None:
    table = pa.Table.from_pylist(
        [{"flight_id": i, **row} for i, row in enumerate(_transforms.RAW * 3)]
    )
    pq.write_table(table, tmp_path / "raw.parquet")
    model = _transforms.transformed()
    result = predict_file(
        model,
        tmp_path / "raw.parquet",
        tmp_path / "out.parquet",
        id_column="flight_id",
        chunk_rows=4,
        model_version="flights@1",
    )
    assert (result.rows, result.chunks) == (9, 3)
    out = pq.read_table(tmp_path / "out.parquet").to_pandas()
    assert list(out.columns) == ["flight_id", "probability", "late", "model_version"]
    expected = _transforms.expected()
    assert out["late"].tolist() == expected["late"] * 3
    assert out["probability"].tolist() == pytest.approx(expected["probability"] * 3, abs=1e-12)
    bad = table.to_pylist()
    bad[6]["colour"] = None
    pq.write_table(pa.Table.from_pylist(bad), tmp_path / "bad.parquet")
    with pytest.raises(BatchPredictionError, match=r"chunk 1 \(rows 4-7\).*'colour' must be"):
        predict_file(model, tmp_path / "bad.parquet", tmp_path / "bad-out.parquet", chunk_rows=4)
    assert not (tmp_path / "bad-out.parquet").exists()
