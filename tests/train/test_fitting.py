"""``fit`` turns an estimator and a table into a Model with a signature, statistics and
metrics; with a checkpoint store, boosting resumes from the latest saved round."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LinearRegression

from ctloop.data import compute_statistics
from ctloop.errors import CheckpointError, TrainingError
from ctloop.train import Checkpoint, CheckpointStore, MemoryCheckpoints, fit


def test_fit_builds_a_model_with_signature_statistics_and_metrics(
    train_valid: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, valid = train_valid
    estimator = GradientBoostingClassifier(n_estimators=20, random_state=0)
    result = fit(estimator, train, "malignant", eval_data=valid)
    model = result.model
    assert not hasattr(estimator, "estimators_"), "the caller's estimator stays unfitted"
    assert model.task == "classification" and model.flavor == "sklearn"
    assert list(model.signature.input_names) == [
        "mean_radius",
        "mean_texture",
        "mean_smoothness",
        "worst_concavity",
    ]
    assert model.training_statistics is not None
    assert model.training_statistics["num_rows"] == 400
    assert 0.9 < result.metrics["auc"] <= 1.0
    assert 0.85 < result.metrics["eval_auc"] <= 1.0
    assert {"accuracy", "log_loss", "eval_accuracy"} <= set(result.metrics)
    assert model.predict(valid.drop(columns="malignant")).shape == (len(valid),)


def test_fit_regression_with_chosen_features_and_given_statistics() -> None:
    frame = pd.DataFrame({"x": np.arange(20.0), "noise": np.ones(20), "y": 3 * np.arange(20.0) + 1})
    stats = compute_statistics(frame[["x"]])
    result = fit(LinearRegression(), frame, "y", features=["x"], training_statistics=stats)
    assert list(result.model.signature.input_names) == ["x"]
    assert result.model.task == "regression"
    assert result.metrics["mae"] == pytest.approx(0.0, abs=1e-9)
    assert result.metrics["r2"] == pytest.approx(1.0)
    assert result.model.training_statistics == stats.to_dict()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"label": "late"}, "label column 'late' is not in the data"),
        ({"label": "y", "features": ["x", "z"]}, "feature columns ['z'] are not in the data"),
        ({"label": "y", "features": ["x", "y"]}, "the label 'y' is also listed as a feature"),
        ({"label": "y", "task": "ranking"}, "task 'ranking' is unknown"),
    ],
)
def test_bad_arguments_fail_with_a_sentence(kwargs: dict, fragment: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(TrainingError) as info:
        fit(LinearRegression(), frame, **kwargs)
    assert fragment in str(info.value)


def _boosters() -> list[object]:
    from lightgbm import LGBMClassifier
    from xgboost import XGBClassifier

    return [
        XGBClassifier(n_estimators=30, max_depth=2, n_jobs=1, random_state=0),
        LGBMClassifier(n_estimators=30, num_leaves=4, n_jobs=1, verbose=-1, random_state=0),
    ]


def _rounds(estimator: object) -> int:
    if hasattr(estimator, "get_booster"):
        return int(estimator.get_booster().num_boosted_rounds())
    return int(estimator.booster_.current_iteration())  # type: ignore[attr-defined]


@pytest.mark.parametrize("estimator", _boosters(), ids=["xgboost", "lightgbm"])
def test_boosting_saves_checkpoints_and_resumes_from_the_latest(
    estimator: object, cancer: pd.DataFrame
) -> None:
    saved = MemoryCheckpoints()
    assert isinstance(saved, CheckpointStore)
    fresh = fit(estimator, cancer, "malignant", checkpoints=saved, checkpoint_every=10)
    assert saved.steps == [10, 20], "every 10 rounds, never the final one"
    assert fresh.resumed_from == 0 and _rounds(fresh.model.estimator) == 30

    interrupted = MemoryCheckpoints()
    interrupted.save(saved._saved[0].state, step=10)  # as if the process died at round 1x
    resumed = fit(estimator, cancer, "malignant", checkpoints=interrupted, checkpoint_every=10)
    assert resumed.resumed_from == 10
    assert interrupted.steps == [10, 20]
    assert _rounds(resumed.model.estimator) == 30
    assert resumed.model.estimator.get_params()["n_estimators"] == 30
    features = cancer.drop(columns="malignant")
    np.testing.assert_allclose(
        resumed.model.predict(features), fresh.model.predict(features), rtol=1e-5
    )


def test_a_checkpoint_that_is_not_a_booster_is_refused(cancer: pd.DataFrame) -> None:
    store = MemoryCheckpoints()
    store.save({"epoch": 3}, step=10)
    with pytest.raises(CheckpointError, match="holds a dict, not the booster bytes"):
        fit(_boosters()[0], cancer, "malignant", checkpoints=store)


def test_memory_checkpoints_refuse_a_bad_step() -> None:
    store = MemoryCheckpoints()
    with pytest.raises(CheckpointError, match="step -1"):
        store.save(b"x", step=-1)
    store.save(b"x", step=0)
    assert store.latest() == Checkpoint(0, b"x")
