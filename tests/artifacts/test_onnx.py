"""Compiling models to ONNX: accepted only when predictions match, kept in the model's
folder, used by predict_frame, and a model that does not convert stays native."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from ctloop.artifacts.model import ColumnSpec, Model, Signature
from ctloop.artifacts.model._onnx import ONNX_FILE, OnnxModel, compile_onnx

CATEGORICAL = ["carrier", "origin", "dest"]


def flights_like(rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Inputs shaped like the flights example's (categories, integers, floats with gaps)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "carrier": pd.Categorical(rng.choice(["AA", "B6", "DL", "UA", "9E"], rows)),
            "origin": pd.Categorical(rng.choice(["EWR", "JFK", "LGA"], rows)),
            "dest": pd.Categorical(rng.choice(["ATL", "BOS", "ORD", "SFO"], rows)),
            "hour": rng.integers(5, 23, rows),
            "distance": rng.integers(100, 2600, rows),
            "temp": np.where(rng.random(rows) < 0.05, np.nan, rng.normal(55, 15, rows).round(2)),
        }
    )
    late = (X["hour"] > 16) ^ (X["carrier"] == "UA") ^ (rng.random(rows) < 0.2)
    return X, pd.Series(late.astype("int64"), name="late")


def fit_flights_like(X: pd.DataFrame, y: pd.Series) -> Pipeline:
    """The flights example's model: ordinal codes (unknown → NaN) + gradient boosting."""
    encode = ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
                CATEGORICAL,
            )
        ],
        remainder="passthrough",
    )
    classifier = HistGradientBoostingClassifier(max_iter=30, max_depth=4, random_state=0)
    return Pipeline([("encode", encode), ("classify", classifier)]).fit(X, y)


@pytest.fixture(scope="module")
def flights_model() -> Model:
    X, y = flights_like(800, seed=1)
    return Model.from_estimator(fit_flights_like(X, y), X)


def test_the_flights_pipeline_compiles_within_tolerance(flights_model: Model) -> None:
    validation, _ = flights_like(400, seed=2)
    result = compile_onnx(flights_model, validation, tolerance=1e-4)
    assert result.accepted, result.reason
    assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
    assert result.rows == 400 and flights_model.runtime == "onnx"


def test_predict_frame_uses_onnx_and_agrees_on_unseen_and_missing_values(
    flights_model: Model,
) -> None:
    X, _ = flights_like(300, seed=3)
    compile_onnx(flights_model, X)
    frame = flights_model.prepare(X)
    # a category unseen in training is missing once prepared, as a null one is
    frame.loc[:20, "carrier"] = np.nan
    frame.loc[20:40, "origin"] = np.nan
    frame.loc[40:60, "temp"] = np.nan
    compiled = flights_model.compiled
    assert compiled is not None
    onnx_out = compiled.predict(frame)
    native_out = flights_model.predict_native(frame)
    assert np.abs(onnx_out - native_out).max() <= 1e-4
    np.testing.assert_array_equal(flights_model.predict_frame(frame), onnx_out)
    assert flights_model.compiled_fallbacks == 0


def test_a_compiled_model_saves_and_loads_with_its_onnx_file(
    flights_model: Model, tmp_path: Path
) -> None:
    X, _ = flights_like(200, seed=4)
    assert compile_onnx(flights_model, X).accepted
    flights_model.save(tmp_path / "model")
    assert (tmp_path / "model" / ONNX_FILE).is_file()
    loaded = Model.load(tmp_path / "model")
    assert loaded.runtime == "onnx" and loaded.compiled_info["max_abs_diff"] <= 1e-4
    np.testing.assert_allclose(loaded.predict(X), flights_model.predict_native(X), atol=1e-4)
    loaded.use_compiled = False
    assert loaded.runtime == "native"


def test_a_runtime_error_falls_back_to_the_original_and_is_counted(
    flights_model: Model,
) -> None:
    X, _ = flights_like(100, seed=5)
    assert compile_onnx(flights_model, X).accepted
    good = flights_model.compiled
    assert good is not None
    broken = OnnxModel(
        good.data,
        signature=good.signature,
        feed="columns",
        task="classification",
        output="no-such-output",
    )
    flights_model.attach_compiled(broken, {})
    before = flights_model.compiled_fallbacks
    frame = flights_model.prepare(X)
    predictions = flights_model.predict_frame(frame)
    np.testing.assert_array_equal(predictions, flights_model.predict_native(frame))
    assert flights_model.compiled_fallbacks == before + 1


class Doubler:
    """Not an estimator any converter knows."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame["x"], dtype=float) * 2


def test_a_model_that_cannot_convert_stays_native() -> None:
    signature = Signature(inputs=(ColumnSpec("x", "float"),))
    model = Model(Doubler(), flavor="python", signature=signature, task="regression")
    result = compile_onnx(model, [{"x": 1.0}, {"x": 2.5}])
    assert not result.accepted and result.max_abs_diff is None
    assert "python" in result.reason and "converter" in result.reason
    assert model.runtime == "native"
    assert model.predict([{"x": 2.5}]).tolist() == [5.0]


def test_a_model_that_disagrees_beyond_the_tolerance_is_refused(flights_model: Model) -> None:
    flights_model.attach_compiled(None, {})
    X, _ = flights_like(300, seed=6)
    result = compile_onnx(flights_model, X, tolerance=0.0)
    # ONNX Runtime sums the trees in float32, scikit-learn in float64: never exactly equal
    assert result.max_abs_diff is not None and result.max_abs_diff > 0
    assert not result.accepted and "tolerance" in result.reason
    assert flights_model.runtime == "native"


def test_plain_records_predict_like_the_prepared_frame(flights_model: Model) -> None:
    X, _ = flights_like(200, seed=4)
    compile_onnx(flights_model, X)
    records = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in X.astype(object).to_dict("records")
    ]
    records[0]["carrier"] = "ZZ"  # unseen in training
    records[1]["origin"] = None
    records[2]["temp"] = None
    records[3]["temp"] = 61  # an int in a float column
    records = [{**r, "temp": None if r["temp"] != r["temp"] else r["temp"]} for r in records]
    fallbacks = flights_model.compiled_fallbacks  # earlier tests share the model

    direct = flights_model.predict_plain_records(records)

    assert direct is not None and flights_model.compiled_fallbacks == fallbacks
    framed = flights_model.predict_frame(flights_model.prepare(records))
    np.testing.assert_allclose(direct, framed, rtol=0, atol=1e-6)
    assert (
        np.abs(direct - flights_model.predict_native(flights_model.prepare(records))).max() < 1e-4
    )


def test_the_records_feed_is_the_prepared_frames_feed(flights_model: Model) -> None:
    X, _ = flights_like(50, seed=6)
    compile_onnx(flights_model, X)
    compiled = flights_model.compiled
    assert compiled is not None and compiled.feed == "columns"
    records = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in X.astype(object).to_dict("records")
    ]
    records = [{**r, "temp": None if r["temp"] != r["temp"] else r["temp"]} for r in records]
    records[0] |= {"carrier": "ZZ", "origin": None, "hour": 7}  # unseen, missing
    records[1] |= {"distance": 2**40, "temp": 61}  # a large integer, an int in a float column
    for rows in ([records[0]], [records[1]], records):
        fed, framed = compiled.records_feed(rows), compiled.inputs(flights_model.prepare(rows))
        assert sorted(fed) == sorted(framed)
        for name, expected in framed.items():
            assert fed[name].dtype == expected.dtype and fed[name].shape == expected.shape, name
            np.testing.assert_array_equal(fed[name], expected, err_msg=name)


def test_plain_records_without_a_compiled_form_are_left_to_the_frame_path() -> None:
    X, y = flights_like(200, seed=5)
    native = Model.from_estimator(fit_flights_like(X, y), X)
    assert native.predict_plain_records([{"carrier": "AA"}]) is None
