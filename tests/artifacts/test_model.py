"""The Model artifact: flavors, signature checks, pickle refusal, compatibility."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression

from ctloop.artifacts.model import ColumnSpec, Model, PythonModel, Signature
from ctloop.errors import ModelCompatibilityError, ModelError, SignatureError, UnsafeModelError
from tests.artifacts.conftest import Workspace


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    return pd.DataFrame(
        {
            "distance": rng.uniform(100, 2000, n),
            "hour": rng.integers(5, 23, n),
            "carrier": pd.Categorical(rng.choice(["AA", "UA", "DL"], n)),
            "late": rng.integers(0, 2, n),
        }
    )


def _features(table: pd.DataFrame) -> pd.DataFrame:
    return table[["distance", "hour", "carrier"]]


class Threshold(PythonModel):
    """A custom model: late when the hour is at or after ``cut``."""

    def __init__(self, cut: int) -> None:
        self.cut = cut

    def predict(self, frame: Any) -> Any:
        return (frame["hour"] >= self.cut).astype("int64").to_numpy()

    def save(self, directory: Path) -> None:
        (directory / "cut.txt").write_text(str(self.cut))

    @classmethod
    def load(cls, files: Mapping[str, Path]) -> Threshold:
        return cls(int(files["cut.txt"].read_text()))


def _estimators(table: pd.DataFrame) -> dict[str, Any]:
    import lightgbm
    import xgboost

    X, y = _features(table), table["late"]
    return {
        "sklearn": HistGradientBoostingClassifier(max_iter=5, categorical_features=None).fit(
            X[["distance", "hour"]], y
        ),
        "xgboost": xgboost.XGBClassifier(n_estimators=5, enable_categorical=True).fit(X, y),
        "lightgbm": lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y),
    }


@pytest.mark.parametrize("flavor", ["sklearn", "xgboost", "lightgbm"])
def test_each_flavor_round_trips_through_the_artifact_store(
    local: Workspace, table: pd.DataFrame, flavor: str
) -> None:
    estimator = _estimators(table)[flavor]
    X = _features(table)[list(estimator.feature_names_in_)]
    model = Model.from_estimator(estimator, X, training_statistics={"rows": len(X)})
    record, loaded = local.round_trip(model)
    assert record.type == "Model" and record.properties["flavor"] == flavor
    assert record.properties["inputs"] == list(X.columns)
    assert loaded.flavor == flavor and loaded.task == "classification"
    assert loaded.training_statistics == {"rows": len(X)}
    np.testing.assert_allclose(loaded.predict(X), estimator.predict_proba(X)[:, 1], rtol=1e-6)
    assert len(loaded.input_example) == 5
    assert loaded.requirements["numpy"] == np.__version__


def test_single_rows_keep_the_training_category_codes(table: pd.DataFrame) -> None:
    estimator = _estimators(table)["xgboost"]
    X = _features(table)
    model = Model.from_estimator(estimator, X)
    one_by_one = [model.predict([row])[0] for row in model.input_example]
    np.testing.assert_allclose(one_by_one, estimator.predict_proba(X.head(5))[:, 1], rtol=1e-6)


def test_the_signature_names_the_column_at_fault(table: pd.DataFrame) -> None:
    model = Model.from_estimator(
        LinearRegression().fit(table[["hour"]], table["late"]), table[["hour"]]
    )
    assert model.task == "regression"
    cases = {
        "missing column 'hour'": [{}],
        "unexpected column 'minute'": [{"hour": 1, "minute": 2}],
        "expects integer values but row 1 has 'x'": [{"hour": 1}, {"hour": "x"}],
        "expects integer values but row 0 has 1.5": [{"hour": 1.5}],
        "expects integer values but row 0 has True": [{"hour": True}],
    }
    for expected, rows in cases.items():
        with pytest.raises(SignatureError, match=expected.replace("(", r"\(")) as info:
            model.predict(rows)
        assert info.value.field in {"hour", "minute"}
    assert model.predict({"hour": [1, 2]}).shape == (2,)
    assert model.predict([{"hour": 3, "minute": 0}], allow_extra=True).shape == (1,)


def test_column_input_of_unequal_lengths_is_refused() -> None:
    signature = Signature((ColumnSpec("a", "float"), ColumnSpec("b", "string")))
    with pytest.raises(SignatureError, match="different lengths"):
        signature.to_frame({"a": [1.0, 2.0], "b": ["x"]})
    frame = signature.to_frame({"a": [1, None], "b": ["x", None]})
    assert frame["a"].dtype == "float64" and frame["a"].isna().tolist() == [False, True]


def test_an_unknown_object_is_refused_rather_than_pickled(table: pd.DataFrame) -> None:
    with pytest.raises(UnsafeModelError, match="refuses pickle"):
        Model.from_estimator(object(), table[["hour"]])


def test_a_trusted_pickle_saves_but_loads_only_when_trusted(
    tmp_path: Path, table: pd.DataFrame
) -> None:
    model = Model.from_estimator(_Constant(), table[["hour"]], trusted=True, task="regression")
    model.save(tmp_path / "m")
    with pytest.raises(UnsafeModelError, match="stored as a pickle"):
        Model.load(tmp_path / "m")
    assert Model.load(tmp_path / "m", trusted=True).predict([{"hour": 1}]).tolist() == [7.0]


class _Constant:
    def predict(self, frame: Any) -> Any:
        return np.full(len(frame), 7.0)


def test_a_python_model_round_trips_by_reference(local: Workspace, table: pd.DataFrame) -> None:
    model = Model.from_estimator(Threshold(12), _features(table))
    _, loaded = local.round_trip(model)
    assert loaded.flavor == "python" and isinstance(loaded.estimator, Threshold)
    assert loaded.predict([{"distance": 1.0, "hour": 13, "carrier": "UA"}]).tolist() == [1]


def test_a_python_model_defined_in_a_function_is_refused(tmp_path: Path) -> None:
    class Local(Threshold):
        pass

    model = Model.from_estimator(Local(3), pd.DataFrame({"hour": [1]}))
    with pytest.raises(ModelError, match="defined in a function"):
        model.save(tmp_path / "m")


def test_loading_checks_the_packages_the_model_needs(tmp_path: Path, table: pd.DataFrame) -> None:
    model = Model.from_estimator(Threshold(1), table[["hour"]])
    model.requirements.update({"not-a-real-package": "1.0", "numpy": "0.1"})
    model.save(tmp_path / "m")
    with pytest.raises(ModelCompatibilityError) as info:
        Model.load(tmp_path / "m")
    message = str(info.value)
    assert "not-a-real-package 1.0 (not installed)" in message
    assert f"numpy 0.1 (installed: {np.__version__}, another major version)" in message
    assert "pip install" in message


def test_model_json_describes_the_model(tmp_path: Path, table: pd.DataFrame) -> None:
    model = Model.from_estimator(Threshold(1), _features(table), metadata={"owner": "ops"})
    model.save(tmp_path / "m")
    description = orjson.loads((tmp_path / "m" / "model.json").read_bytes())
    assert description["flavor"] == "python"
    assert description["signature"]["inputs"][2] == {
        "name": "carrier",
        "type": "category",
        "categories": ["AA", "DL", "UA"],
    }
    assert description["metadata"] == {"owner": "ops"}


def test_a_loaded_lightgbm_model_saves_again(tmp_path: Path, table: pd.DataFrame) -> None:
    estimator = _estimators(table)["lightgbm"]
    X = _features(table)
    Model.from_estimator(estimator, X).save(tmp_path / "first")
    loaded = Model.load(tmp_path / "first")
    loaded.save(tmp_path / "second")
    again = Model.load(tmp_path / "second")
    np.testing.assert_allclose(again.predict(X), estimator.predict_proba(X)[:, 1], rtol=1e-6)


def test_a_category_unseen_in_training_becomes_missing() -> None:
    signature = Signature((ColumnSpec("carrier", "category", ("AA", "UA")),))
    frame = signature.to_frame([{"carrier": "UA"}, {"carrier": "ZZ"}])
    assert frame["carrier"].cat.codes.tolist() == [1, -1]
    assert list(frame["carrier"].cat.categories) == ["AA", "UA"]
