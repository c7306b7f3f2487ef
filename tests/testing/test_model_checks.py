"""Model tests on real scikit-learn models: each passes for a sound model and fails
with a message naming the check, the rows or feature and the numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDClassifier
from sklearn.tree import DecisionTreeClassifier

from ctloop.artifacts.model import Model
from ctloop.testing import (
    CheckFailed,
    check_finite_predictions,
    check_loss_decreases,
    check_overfits_tiny_batch,
    check_same_seed_same_model,
    check_slice_quality,
    expect_direction,
    expect_invariant,
)


def data(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {"delay": rng.normal(10, 5, rows), "distance": rng.normal(1000, 300, rows)}
    )
    late = (frame.delay + rng.normal(0, 2, rows) > 10).astype("int64").to_numpy()
    return frame, late


@pytest.fixture(scope="module")
def model() -> Model:
    frame, late = data()
    return Model.from_estimator(LogisticRegression().fit(frame, late), frame)


def test_finite_predictions_pass_and_an_infinite_output_is_named_by_row(model: Model) -> None:
    frame, _ = data(20)
    assert check_finite_predictions(model, frame).shape == (20,)

    def broken(rows: pd.DataFrame) -> np.ndarray:
        out = rows["delay"].to_numpy().copy()
        out[[3, 11]] = [np.nan, np.inf]
        return out

    with pytest.raises(CheckFailed) as failure:
        check_finite_predictions(broken, frame)
    assert str(failure.value) == (
        "check finite_predictions failed: 2 of 20 predictions are NaN or infinite "
        "(1 NaN; rows 3, 11)"
    )


def test_same_seed_same_model_passes_and_an_unseeded_model_fails() -> None:
    frame, late = data()

    def seeded(seed: int) -> SGDClassifier:
        return SGDClassifier(loss="log_loss", random_state=seed, max_iter=5, tol=None).fit(
            frame, late
        )

    check_same_seed_same_model(seeded, frame.head(50))
    calls = iter(range(100))

    def unseeded(seed: int) -> SGDClassifier:
        return SGDClassifier(loss="log_loss", random_state=next(calls), max_iter=5, tol=None).fit(
            frame, late
        )

    with pytest.raises(
        CheckFailed, match=r"two models trained with seed 0 predict differently for \d+ of 50 rows"
    ):
        check_same_seed_same_model(unseeded, frame.head(50))


def test_loss_decreases_on_a_real_curve_and_a_flat_curve_fails() -> None:
    from sklearn.neural_network import MLPClassifier

    frame, late = data()
    with warnings.catch_warnings():  # 30 epochs on purpose: a short curve is enough
        warnings.simplefilter("ignore", ConvergenceWarning)
        curve = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(
            (frame - frame.mean()) / frame.std(), late
        )
    check_loss_decreases(curve.loss_curve_, min_relative_drop=0.1)
    with pytest.raises(CheckFailed) as failure:
        check_loss_decreases([0.7, 0.6, 0.65, 0.69], min_relative_drop=0.1)
    assert str(failure.value) == (
        "check loss_decreases failed: the loss went from 0.7 (iteration 0) to 0.69 "
        "(iteration 3), a drop of 1.4%, not more than the required 10.0%; "
        "the largest rise is at iteration 2"
    )
    with pytest.raises(CheckFailed, match="NaN or infinite at iteration 1"):
        check_loss_decreases([0.7, float("nan")])


def test_a_tree_overfits_a_tiny_batch_and_a_constant_model_does_not() -> None:
    frame, late = data(20)
    check_overfits_tiny_batch(lambda X, y: DecisionTreeClassifier().fit(X, y), frame, late)
    with pytest.raises(
        CheckFailed, match=r"on the 20 rows it was trained on, accuracy is 0\.\d+ < 0.95"
    ):
        check_overfits_tiny_batch(
            lambda X, y: DummyClassifier(strategy="most_frequent").fit(X, y), frame, late
        )


def test_invariance_holds_for_an_unused_column_and_names_a_used_one(model: Model) -> None:
    frame, _ = data(30)
    with_name = frame.assign(name="Ann")
    expect_invariant(
        lambda rows: model.predict(rows[["delay", "distance"]]), with_name, change={"name": "Bob"}
    )
    with pytest.raises(CheckFailed) as failure:
        expect_invariant(model, frame, change={"delay": lambda d: d + 5})
    message = str(failure.value)
    assert message.startswith("check invariant failed: changing 'delay' moved 30 of 30 predictions")
    assert "largest move 0." in message and "rows 0, 1, 2, 3, 4 and 25 more" in message


def test_direction_holds_for_delay_and_fails_the_other_way(model: Model) -> None:
    frame, _ = data(40)
    expect_direction(model, frame, "delay", increases=True)
    with pytest.raises(CheckFailed) as failure:
        expect_direction(model, frame, "delay", increases=False, by=2.0)
    assert str(failure.value).startswith(
        "check direction failed: raising 'delay' by 2 should make predictions fall, but "
        "40 of 40 moved the other way"
    )


def test_slice_quality_names_the_slice_that_misses_its_floor() -> None:
    frame, late = data(600)
    frame["region"] = np.where(np.arange(600) < 300, "east", "west")
    # in the west the label is noise: the model cannot rank it
    rng = np.random.default_rng(3)
    late = late.copy()
    late[300:] = rng.integers(0, 2, 300)
    fitted = LogisticRegression().fit(frame[["delay", "distance"]], late)
    labelled = frame.assign(late=late)
    scores = check_slice_quality(
        lambda rows: fitted.predict_proba(rows[["delay", "distance"]])[:, 1],
        labelled,
        label="late",
        by="region",
        threshold=0.4,
    )
    assert set(scores) == {"all", "region=east", "region=west"}
    with pytest.raises(CheckFailed) as failure:
        check_slice_quality(
            lambda rows: fitted.predict_proba(rows[["delay", "distance"]])[:, 1],
            labelled,
            label="late",
            by="region",
            threshold=0.8,
        )
    message = str(failure.value)
    assert "slices miss auc at least 0.8" in message
    assert (
        "region=west (300 rows): auc 0.5" in message or "region=west (300 rows): auc 0.4" in message
    )
    assert "region=east" not in message


def test_regression_quality_is_an_upper_bound_on_error() -> None:
    frame, _ = data(200)
    target = 2 * frame.delay + 1
    fitted = LinearRegression().fit(frame, target)
    labelled = frame.assign(target=target, half=np.arange(200) % 2)
    with pytest.raises(CheckFailed, match=r"slices miss rmse at most -1"):
        check_slice_quality(
            lambda rows: fitted.predict(rows[["delay", "distance"]]),
            labelled,
            label="target",
            by="half",
            metric="rmse",
            threshold=-1,
            min_rows=10,
        )
    check_slice_quality(
        lambda rows: fitted.predict(rows[["delay", "distance"]]),
        labelled,
        label="target",
        by="half",
        metric="rmse",
        threshold=0.01,
        min_rows=10,
    )
