"""The ``evaluate`` and ``gate`` steps on real models: ctloop Models of scikit-learn,
XGBoost and LightGBM estimators, a champion scored on the same rows, the blessing."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from ctloop.artifacts.model import Model
from ctloop.artifacts.records import RecordMaterializer
from ctloop.components import evaluate, gate
from ctloop.components._evaluation import describe_blessing, slice_specs
from ctloop.errors import GateFailedError, ParameterError
from ctloop.evaluate import Blessing, Evaluation

FEATURES = ["dep_delay", "weather"]


@pytest.fixture
def flights() -> pd.DataFrame:
    """400 flights: late depends on dep_delay and weather; distance is noise."""
    rng = np.random.default_rng(21)
    delay, weather = rng.normal(size=400), rng.normal(size=400)
    return pd.DataFrame(
        {
            "dep_delay": delay,
            "weather": weather,
            "distance": rng.uniform(100.0, 2500.0, 400),
            "carrier": rng.choice(["AA", "DL", "UA"], 400),
            "late": (2 * delay + weather + 0.5 * rng.normal(size=400) > 0).astype(int),
        }
    )


def _model(estimator: object, data: pd.DataFrame, columns: list[str]) -> Model:
    fitted = estimator.fit(data[columns], data["late"])  # type: ignore[attr-defined]
    return Model.from_estimator(fitted, data[columns])


def _round_trip(value: object, folder: Path) -> object:
    materializer = RecordMaterializer()
    files, properties = materializer.to_bytes(value)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return materializer.load({name: folder / name for name in files}, properties)


def test_evaluate_scores_the_candidate_and_the_champion_on_the_same_rows(
    flights: pd.DataFrame, tmp_path: Path
) -> None:
    train, test = flights.iloc[:200], flights.iloc[200:]
    candidate = _model(LogisticRegression(), train, FEATURES)
    champion = _model(LogisticRegression(), train, ["distance"])
    ev = evaluate(
        candidate,
        test,
        label="late",
        slices=["carrier", {"column": "distance", "bins": [0, 1000, "inf"]}],
        baseline=champion,
    )
    assert ev.task == "classification" and ev.rows == 200  # the task comes from the model
    assert set(ev.metrics) == {"auc", "log_loss", "accuracy", "precision", "recall", "f1", "ece"}
    assert ev.baseline is not None and ev.baseline.rows == 200
    assert ev.metrics["auc"] > 0.9 > ev.baseline.metrics["auc"]
    assert [r.value for r in ev.slices["carrier"]] == ["AA", "DL", "UA"]
    assert [r.value for r in ev.baseline.slices["distance"]] == ["[0, 1000)", "[1000, inf)"]
    assert {a.feature for a in ev.attributions} == set(FEATURES)  # the model's own inputs
    assert ev.contributions == ()  # logistic regression has no native contributions
    assert _round_trip(ev, tmp_path) == ev


def test_evaluate_a_regression_model(flights: pd.DataFrame) -> None:
    data = flights.assign(arr_delay=3 * flights["dep_delay"] + 1)
    model = Model.from_estimator(
        LinearRegression().fit(data[["dep_delay"]], data["arr_delay"]), data[["dep_delay"]]
    )
    ev = evaluate(model, data, label="arr_delay", slices=["carrier"], attributions=False)
    assert ev.task == "regression"
    assert ev.metrics["mae"] == pytest.approx(0.0, abs=1e-9)
    assert ev.metrics["r2"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "estimator",
    [
        xgboost.XGBClassifier(n_estimators=20, max_depth=3),
        lightgbm.LGBMClassifier(n_estimators=20, verbose=-1),
    ],
    ids=["xgboost", "lightgbm"],
)
def test_tree_ensembles_give_native_contributions(
    estimator: object, flights: pd.DataFrame, tmp_path: Path
) -> None:
    columns = ["dep_delay", "weather", "distance"]
    model = _model(estimator, flights, columns)
    model.save(tmp_path / "model")
    loaded = Model.load(tmp_path / "model")  # as a later run sees it: the flavor's own format
    ev = evaluate(loaded, flights, label="late", attributions=False)
    assert ev.contributions[0].feature == "dep_delay"  # the strongest signal
    assert {c.feature for c in ev.contributions} == set(columns)
    assert ev.contributions[-1].feature == "distance"  # noise contributes least
    assert all(c.mean_abs >= 0 for c in ev.contributions)


def test_a_sklearn_tree_has_no_native_contributions(flights: pd.DataFrame) -> None:
    model = _model(DecisionTreeClassifier(max_depth=3), flights, FEATURES)
    assert evaluate(model, flights, label="late", attributions=False).contributions == ()


def test_gate_without_champion_applies_absolute_thresholds_and_says_so(
    flights: pd.DataFrame, tmp_path: Path
) -> None:
    model = _model(LogisticRegression(), flights, FEATURES)
    ev = evaluate(model, flights, label="late", slices=["carrier"], attributions=False)
    blessing = gate(ev, model, absolute=["auc >= 0.7"], change=["auc may drop by 0.01"])
    assert blessing.passed and not blessing.champion_present
    assert blessing.notes == ("no champion: change thresholds not applied",)
    assert [c.threshold for c in blessing.comparisons] == ["auc >= 0.7"]
    assert blessing.infra is not None and blessing.infra.passed, blessing.infra
    assert _round_trip(blessing, tmp_path) == blessing
    assert "no champion yet" in describe_blessing(blessing)


def test_gate_compares_with_the_champion_overall_and_per_slice(flights: pd.DataFrame) -> None:
    train, test = flights.iloc[:200], flights.iloc[200:]
    worse = _model(LogisticRegression(), train, ["distance"])
    champion = _model(LogisticRegression(), train, FEATURES)
    ev = evaluate(worse, test, label="late", slices=["carrier"], baseline=champion)
    blessing = gate(ev, absolute=["auc >= 0.4"], change=["auc may drop by 0.01"], min_slice_rows=20)
    assert not blessing.passed and blessing.champion_present
    assert blessing.infra is None  # no model given: nothing to load
    failed = {c.where for c in blessing.failures}
    assert failed == {"overall", "slice carrier=AA", "slice carrier=DL", "slice carrier=UA"}
    drop = next(c for c in blessing.failures if c.where == "overall")
    assert ev.baseline is not None and drop.champion == ev.baseline.metrics["auc"]
    with pytest.raises(GateFailedError, match="failed 4 gate check"):
        gate(ev, change=["auc may drop by 0.01"], min_slice_rows=20, fail=True)


def test_gate_fails_a_model_that_does_not_load_in_a_fresh_process(
    flights: pd.DataFrame,
) -> None:
    model = _model(LogisticRegression(), flights, FEATURES)
    model.requirements["ctloop-no-such-package"] = "1.0"
    ev = evaluate(model, flights, label="late", attributions=False)
    blessing = gate(ev, model, absolute=["auc >= 0.5"])
    assert not blessing.passed and all(c.passed for c in blessing.comparisons)
    assert blessing.infra is not None and blessing.infra.stage == "requirements"
    with pytest.raises(GateFailedError, match="infra validation"):
        blessing.raise_for_failure()


def test_slices_are_names_dicts_or_specs() -> None:
    specs = slice_specs(["carrier", {"column": "origin", "top": 2}])
    assert [(s.column, s.top) for s in specs] == [("carrier", None), ("origin", 2)]
    with pytest.raises(ParameterError, match="not a column name"):
        slice_specs([{"bins": [0, 1]}])


def test_an_evaluation_without_baseline_reads_as_before() -> None:
    old = {"task": "regression", "label": "y", "rows": 3, "metrics": {"mae": 1.0}}
    assert Evaluation.from_dict(old).baseline is None
    assert (
        Blessing.from_dict(
            {"passed": True, "champion_present": False, "comparisons": [], "notes": []}
        ).infra
        is None
    )
