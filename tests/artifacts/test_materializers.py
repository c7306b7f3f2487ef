"""The built-in materializers and the registry: every supported type round-trips on
the local store and on S3, unsupported types get an error that says what to do."""

from __future__ import annotations

import json
import math
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ctloop.artifacts import Materializer, materializer_for, register_materializer
from ctloop.artifacts._builtin import SklearnMaterializer
from ctloop.artifacts._registry import materializer_named
from ctloop.errors import ArtifactError, UnsupportedTypeError
from ctloop.store.records import ArtifactRecord, FileEntry, new_id
from tests.artifacts.conftest import Workspace

# -- tables ---------------------------------------------------------------------------


def flights() -> pd.DataFrame:
    """A small table with every kind of column that must survive Parquet."""
    return pd.DataFrame(
        {
            "dep_delay": np.array([3, -2, 15, 0], dtype="int32"),
            "distance": [1400.0, np.nan, 719.5, 1065.0],
            "carrier": ["UA", "AA", None, "B6"],
            "origin": pd.Categorical(["JFK", "LGA", "JFK", "EWR"], ordered=True),
            "sched": pd.date_range("2013-01-01 05:15", periods=4, freq="h", tz="America/New_York"),
            "arrived": pd.to_datetime(
                ["2013-01-01 08:30", None, "2013-01-01 09:00", "2013-01-01 09:10"]
            ),
            "air_time": pd.to_timedelta([227, 150, 160, 183], unit="min"),
            "seats": pd.array([149, None, 200, 55], dtype="Int64"),
            "cancelled": [False, True, False, False],
        },
        index=pd.Index(["f1", "f2", "f3", "f4"], name="flight_id"),
    )


def test_a_dataframe_round_trips_with_its_dtypes_and_index(workspace: Workspace) -> None:
    frame = flights()
    record, loaded = workspace.round_trip(frame)
    pd.testing.assert_frame_equal(loaded, frame, check_index_type=True)
    assert (record.type, record.materializer) == ("Dataset", "ctloop.pandas")
    assert record.properties["rows"] == 4
    assert record.properties["columns"][3] == {"name": "origin", "dtype": "category"}
    assert [f.path for f in record.files] == ["data.parquet"]


def test_a_range_index_stays_a_range_index(local: Workspace) -> None:
    _, loaded = local.round_trip(pd.DataFrame({"a": [1, 2, 3]}).iloc[1:])
    assert isinstance(loaded.index, pd.RangeIndex)
    assert list(loaded.index) == [1, 2]


def test_a_dataframe_with_non_string_column_names_is_refused(local: Workspace) -> None:
    with pytest.raises(ArtifactError, match=r"column 0 .* type int.*df.columns.map\(str\)"):
        local.save(pd.DataFrame({0: [1, 2]}))


def test_a_dataframe_column_of_mixed_types_is_refused_naming_it(local: Workspace) -> None:
    with pytest.raises(ArtifactError, match="column mixed"):
        local.save(pd.DataFrame({"mixed": [1, "x"]}))


def test_an_arrow_table_round_trips_as_a_table(workspace: Workspace) -> None:
    table = pa.table({"id": [1, 2, 3], "name": ["a", None, "c"], "x": [0.5, 1.5, None]})
    record, loaded = workspace.round_trip(table)
    assert isinstance(loaded, pa.Table)
    assert loaded.equals(table)
    assert (record.type, record.materializer) == ("Dataset", "ctloop.arrow")
    assert record.properties["columns"][1] == {"name": "name", "dtype": "string"}


# -- arrays ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype="float32").reshape(3, 4),
        np.array([True, False]),
        np.array(["dep", "arr"]),
        np.array(["2013-01-01", "2013-01-02"], dtype="datetime64[D]"),
        np.zeros((0, 3), dtype="int64"),
    ],
    ids=["float32-2d", "bool", "unicode", "datetime", "empty"],
)
def test_an_array_round_trips(workspace: Workspace, array: np.ndarray) -> None:
    record, loaded = workspace.round_trip(array)
    np.testing.assert_array_equal(loaded, array)
    assert loaded.dtype == array.dtype
    assert record.type == "Array"
    assert record.properties == {"shape": list(array.shape), "dtype": str(array.dtype)}


def test_an_object_array_is_refused_because_it_would_need_pickle(local: Workspace) -> None:
    with pytest.raises(ArtifactError, match=r"dtype object.*pickle.*astype"):
        local.save(np.array([{"a": 1}, None], dtype=object))


def test_a_masked_array_is_refused(local: Workspace) -> None:
    with pytest.raises(ArtifactError, match="masked"):
        local.save(np.ma.masked_array([1, 2], mask=[False, True]))


# -- JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"auc": 0.91, "classes": ["a", "b"], "nested": {"n": 3, "none": None}},
        [1, "two", 3.0, None, True],
        "a string with ünïcödé",
        0,
        -17,
        2.5,
        True,
        False,
        None,
        {},
        [],
        2**70,
        -(2**64),
    ],
)
def test_json_values_round_trip_exactly(workspace: Workspace, value: Any) -> None:
    record, loaded = workspace.round_trip(value)
    assert loaded == value
    assert type(loaded) is type(value)  # True stays True, not 1
    assert record.type == "JSON"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_round_trip(local: Workspace, value: float) -> None:
    record, loaded = local.round_trip({"loss": value, "ok": [1.0, value]})
    assert record.properties["encoding"] == "python"
    for got in (loaded["loss"], loaded["ok"][1]):
        assert (math.isnan(got) and math.isnan(value)) or got == value


def test_tuples_and_numpy_values_come_back_as_lists_and_numbers(local: Workspace) -> None:
    _, loaded = local.round_trip(
        {"pair": (1, 2), "count": np.int64(7), "score": np.float32(0.5), "v": np.arange(3)}
    )
    assert loaded == {"pair": [1, 2], "count": 7, "score": 0.5, "v": [0, 1, 2]}


def test_numpy_nan_nested_in_json_round_trips(local: Workspace) -> None:
    _, loaded = local.round_trip({"scores": np.array([1.0, np.nan])})
    assert loaded["scores"][0] == 1.0 and math.isnan(loaded["scores"][1])


def test_a_top_level_numpy_scalar_is_json(local: Workspace) -> None:
    record, loaded = local.round_trip(np.float64(0.25))
    assert record.type == "JSON" and loaded == 0.25


def test_json_with_a_non_string_key_is_refused_naming_the_key(local: Workspace) -> None:
    with pytest.raises(ArtifactError, match=r"key 1 of type int.*str\(\)"):
        local.save({"per_class": {1: 0.5}})


def test_json_with_an_unsupported_member_names_where_it_is(local: Workspace) -> None:
    with pytest.raises(ArtifactError, match=r"the value\['when'\]\[0\] has type datetime.date"):
        import datetime

        local.save({"when": [datetime.date(2024, 1, 1)]})


def test_json_that_contains_itself_is_refused(local: Workspace) -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(ArtifactError, match="contains itself"):
        local.save(loop)


def test_json_is_stored_as_plain_json(local: Workspace) -> None:
    record = local.save({"b": 1, "a": [1.5, None]})
    [entry] = record.files
    assert json.loads(local.store.get_bytes(entry.digest)) == {"b": 1, "a": [1.5, None]}


# -- scikit-learn ---------------------------------------------------------------------


class Doubler(BaseEstimator, TransformerMixin):
    """A user-defined transformer: a type skops does not trust."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return X * 2


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


@pytest.fixture
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any use of pickle fail loudly."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pickle was used")

    for name in ("dump", "dumps", "load", "loads", "Pickler", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


@pytest.mark.parametrize(
    "model",
    [
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        RandomForestClassifier(n_estimators=5, random_state=0),
        make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(max_iter=500)),
    ],
    ids=["pipeline", "forest", "function-transformer"],
)
def test_a_sklearn_model_round_trips_through_skops(
    workspace: Workspace, iris: tuple[np.ndarray, np.ndarray], model: Any, no_pickle: None
) -> None:
    X, y = iris
    model.fit(X, y)
    record, loaded = workspace.round_trip(model)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert (record.type, record.materializer) == ("Model", "ctloop.sklearn")
    assert record.properties["class"] == f"{type(model).__module__}.{type(model).__qualname__}"
    assert [f.path for f in record.files] == ["model.skops"]


def test_a_saved_model_holds_no_pickle(
    local: Workspace, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(*iris)
    [entry] = local.save(model).files
    with zipfile.ZipFile(local.store.local_path(entry.digest, local.cache)) as archive:
        for member in archive.namelist():
            data = archive.read(member)
            assert not member.endswith((".pkl", ".pickle"))
            assert not data.startswith(b"\x80"), f"{member} is a pickle"
            if member.endswith(".npy"):
                assert data.startswith(b"\x93NUMPY") and b"'O'" not in data[:128]
            else:
                json.loads(data)


def test_a_model_with_an_untrusted_type_is_refused_when_saved(
    local: Workspace, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    model = make_pipeline(Doubler(), LogisticRegression(max_iter=500)).fit(*iris)
    with pytest.raises(ArtifactError, match=f"{__name__}.Doubler.*extra_trusted"):
        local.save(model)
    assert list(local.store.iter_blobs()) == []


def test_a_model_with_an_untrusted_type_is_refused_when_loaded(
    local: Workspace, iris: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import skops.io

    model = make_pipeline(Doubler(), LogisticRegression(max_iter=500)).fit(*iris)
    skops.io.dump(model, tmp_path / "model.skops")  # written without ctloop's check
    digest, size = local.store.put_file(tmp_path / "model.skops")
    record = ArtifactRecord(
        id=new_id(),
        type="Model",
        materializer="ctloop.sklearn",
        materializer_version="1",
        digest="0" * 64,
        uri="",
        size=size,
        files=(FileEntry("model.skops", digest, size),),
    )
    with pytest.raises(ArtifactError, match=f"{__name__}.Doubler"):
        local.load(record)


def test_trusting_a_module_explicitly_allows_its_types(
    local: Workspace, iris: tuple[np.ndarray, np.ndarray], clean_registry: None
) -> None:
    register_materializer(SklearnMaterializer(extra_trusted=("tests.artifacts.",)))
    model = make_pipeline(Doubler(), LogisticRegression(max_iter=500)).fit(*iris)
    _, loaded = local.round_trip(model)
    np.testing.assert_array_equal(loaded.predict(iris[0]), model.predict(iris[0]))


# -- the registry ---------------------------------------------------------------------


class Widget:
    """A user type nothing handles."""


def test_an_unsupported_type_names_the_type_and_the_fix(local: Workspace) -> None:
    with pytest.raises(UnsupportedTypeError) as caught:
        local.save(Widget())
    message = str(caught.value)
    assert f"{__name__}.Widget" in message
    for hint in (
        "pandas.DataFrame",
        "numpy.ndarray",
        "dict",
        "register_materializer",
        "Materializer",
    ):
        assert hint in message
    assert list(local.store.iter_blobs()) == []


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (True, "ctloop.json"),
        (3, "ctloop.json"),
        (pd.DataFrame(), "ctloop.pandas"),
        (Path("."), "ctloop.files"),
        (np.zeros(2), "ctloop.numpy"),
        (LogisticRegression(), "ctloop.sklearn"),
    ],
)
def test_each_value_gets_its_materializer(value: Any, name: str) -> None:
    assert materializer_for(value).name == name


class Point:
    """A user type with its own materializer."""

    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y


class PointMaterializer(Materializer):
    name = "tests.point"
    artifact_type = "Point"
    handles: ClassVar[tuple[str, ...]] = (f"{__name__}.Point",)

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        (directory / "point.json").write_text(json.dumps([value.x, value.y]))
        return {"norm": math.hypot(value.x, value.y)}

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        return Point(*json.loads(files["point.json"].read_text()))


class LoudJson(Materializer):
    """Saves dicts its own way: registered first, it wins over the built-in."""

    name = "tests.loud-json"
    artifact_type = "JSON"
    handles: ClassVar[tuple[str, ...]] = ("builtins.dict",)

    def save(self, value: Any, directory: Path) -> dict[str, Any]:
        (directory / "loud.json").write_text(json.dumps(value).upper())
        return {}

    def load(self, files: Mapping[str, Path], properties: Mapping[str, Any]) -> Any:
        return json.loads(files["loud.json"].read_text().lower())


def test_a_registered_materializer_saves_its_type(
    workspace: Workspace, clean_registry: None
) -> None:
    register_materializer(PointMaterializer())
    record, loaded = workspace.round_trip(Point(3.0, 4.0))
    assert (loaded.x, loaded.y) == (3.0, 4.0)
    assert (record.type, record.properties) == ("Point", {"norm": 5.0})


def test_a_registered_materializer_wins_over_the_built_ins(
    local: Workspace, clean_registry: None
) -> None:
    register_materializer(LoudJson())
    record, loaded = local.round_trip({"a": 1})
    assert record.materializer == "tests.loud-json"
    assert loaded == {"a": 1}
    assert materializer_for([1]).name == "ctloop.json"


def test_a_materializer_registered_last_only_takes_what_nothing_else_takes(
    clean_registry: None,
) -> None:
    register_materializer(LoudJson(), first=False)
    assert materializer_for({"a": 1}).name == "ctloop.json"
    register_materializer(PointMaterializer(), first=False)
    assert materializer_for(Point(0, 0)).name == "tests.point"


def test_registering_a_name_again_replaces_the_first(clean_registry: None) -> None:
    register_materializer(LoudJson())
    register_materializer(LoudJson())
    from ctloop.artifacts._registry import registered

    assert [m.name for m in registered()].count("tests.loud-json") == 1


def test_registering_something_else_is_refused(clean_registry: None) -> None:
    with pytest.raises(ArtifactError, match="Materializer instance"):
        register_materializer(cast(Any, PointMaterializer))


def test_an_unknown_materializer_name_says_what_to_import() -> None:
    with pytest.raises(ArtifactError, match=r"'myproject\.point'.*import the module"):
        materializer_named("myproject.point")


def test_artifacts_of_a_user_materializer_need_it_registered_to_load(
    local: Workspace, clean_registry: None
) -> None:
    register_materializer(PointMaterializer())
    record = local.save(Point(1.0, 2.0))
    from ctloop.artifacts import _registry as registry

    registry._front[:] = [m for m in registry._front if m.name != "tests.point"]
    with pytest.raises(ArtifactError, match=r"tests\.point"):
        local.load(record)


def test_sklearn_model_holding_partials_of_sklearn_functions_round_trips(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ctloop.artifacts import load_value, save_value
    from ctloop.store._fs_artifacts import LocalArtifactStore

    X = pd.DataFrame({"a": pd.Categorical(["x", "y"] * 50), "b": np.arange(100.0)})
    y = np.arange(100) % 2
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=3).fit(X, y)
    store = LocalArtifactStore(tmp_path / "store")
    record = save_value(model, store, staging_root=tmp_path / "stage")
    loaded = load_value(record, store, cache_dir=tmp_path / "cache")
    assert (loaded.predict_proba(X) == model.predict_proba(X)).all()
