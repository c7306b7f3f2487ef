"""Staged boosting: XGBoost and LightGBM report the tuning metric during one training.

A finished trial is exactly one fit with all its rounds, the same model a fit without
stages makes, and its last intermediate score is the score of that model; a pruned trial
stops training at the stage where the pruner said stop."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression

from ctloop.train import TrialPruned, TrialReporter, tune
from ctloop.train._staging import ValidationScorer, stage_points, staged_fit

ROUNDS = 30


def classification_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    X, y = make_classification(n_samples=900, n_features=6, n_informative=4, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]).assign(label=y)
    return frame.iloc[:600], frame.iloc[600:]


def regression_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    X, y = make_regression(n_samples=900, n_features=6, noise=10.0, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]).assign(label=y)
    return frame.iloc[:600], frame.iloc[600:]


def boosters() -> list[Any]:
    """One classifier and one regressor of each library, with row sampling (seeded)."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from xgboost import XGBClassifier, XGBRegressor

    lgbm = {"n_estimators": ROUNDS, "subsample": 0.8, "subsample_freq": 1, "verbose": -1}
    xgb = {"n_estimators": ROUNDS, "subsample": 0.8, "n_jobs": 1}
    return [
        pytest.param(XGBClassifier(**xgb, random_state=0), id="xgboost-classifier"),
        pytest.param(XGBRegressor(**xgb, random_state=0), id="xgboost-regressor"),
        pytest.param(LGBMClassifier(**lgbm, random_state=0), id="lightgbm-classifier"),
        pytest.param(LGBMRegressor(**lgbm, random_state=0), id="lightgbm-regressor"),
    ]


def rounds_of(estimator: Any) -> int:
    """The boosting rounds in a fitted estimator's booster."""
    if hasattr(estimator, "get_booster"):
        return int(estimator.get_booster().num_boosted_rounds())
    return int(estimator.booster_.current_iteration())


def predictions(estimator: Any, X: pd.DataFrame) -> np.ndarray:
    if hasattr(estimator, "predict_proba"):
        return np.asarray(estimator.predict_proba(X))
    return np.asarray(estimator.predict(X))


@pytest.mark.parametrize("estimator", boosters())
def test_a_finished_trial_is_one_fit_equal_to_a_plain_fit(estimator: Any) -> None:
    classifier = hasattr(estimator, "predict_proba")
    train, valid = classification_data() if classifier else regression_data()
    space = {"max_depth": {"int": [2, 5]}, "learning_rate": {"float": [0.05, 0.3]}}
    result = tune(estimator, train, valid, "label", space, n_trials=3, pruner="none", seed=1)

    assert result.best_model is not None
    staged = result.best_model.estimator
    assert rounds_of(staged) == ROUNDS, "all the requested rounds, once"
    plain = clone(estimator).set_params(**result.best_params)
    plain.fit(train.drop(columns="label"), train["label"])
    X_valid = valid.drop(columns="label")
    np.testing.assert_array_equal(predictions(staged, X_valid), predictions(plain, X_valid))
    for trial in result.trials:
        assert sorted(trial.intermediate) == stage_points(ROUNDS, 5) == [6, 12, 18, 24, 30]
        assert trial.intermediate[ROUNDS] == trial.score
    task, metric = ("classification", "auc") if classifier else ("regression", "rmse")
    scorer = ValidationScorer(task, metric, X_valid, valid["label"])
    assert scorer(staged) == pytest.approx(result.best_score, rel=1e-12), "scored after fitting"


def with_a_category_and_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a categorical feature and missing values in another."""
    rng = np.random.default_rng(0)
    colour = pd.Categorical(rng.choice(["red", "green", "blue"], len(frame)))
    gaps = frame["f0"].mask(rng.random(len(frame)) < 0.1)
    return frame.assign(f0=gaps, colour=colour)


def predictions_of_first(estimator: Any, X: pd.DataFrame, rounds: int) -> np.ndarray:
    """The predictions (positive class's probability) of the first ``rounds`` rounds."""
    classifier = hasattr(estimator, "predict_proba")
    predict = estimator.predict_proba if classifier else estimator.predict
    if hasattr(estimator, "get_booster"):
        found = predict(X, iteration_range=(0, rounds))
    else:
        found = predict(X, num_iteration=rounds)
    return np.asarray(found)[:, -1] if classifier else np.asarray(found)


@pytest.mark.parametrize("estimator", boosters())
def test_each_stage_scores_the_rounds_trained_so_far(estimator: Any) -> None:
    classifier = hasattr(estimator, "predict_proba")
    if hasattr(estimator, "get_booster"):
        estimator.set_params(enable_categorical=True)
    train, valid = classification_data() if classifier else regression_data()
    train, valid = with_a_category_and_gaps(train), with_a_category_and_gaps(valid)
    X, y, X_valid = train.drop(columns="label"), train["label"], valid.drop(columns="label")
    task, metric = ("classification", "log_loss") if classifier else ("regression", "mae")
    scorer = ValidationScorer(task, metric, X_valid, valid["label"])
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    scored = staged_fit(estimator, X, y, scorer, TrialReporter(study.ask()), stages=3)
    reported = study.trials[0].intermediate_values
    assert sorted(reported) == [10, 20, 30]
    for rounds, value in reported.items():
        expected = predictions_of_first(estimator, X_valid, rounds)
        assert value == pytest.approx(scorer.score_predictions(expected, 1), rel=1e-12)
    assert scored == reported[30] == pytest.approx(scorer(estimator), rel=1e-12)


class CountTrainings:
    """An XGBoost callback a user might add: counts trainings and rounds."""

    def __init__(self) -> None:
        import xgboost

        self.trainings = 0
        self.rounds = 0
        outer = self

        class _Count(xgboost.callback.TrainingCallback):
            def before_training(self, model: Any) -> Any:
                outer.trainings += 1
                return model

            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                outer.rounds += 1
                return False

        self.callback = _Count()


def test_xgboost_trains_once_and_keeps_the_users_callbacks() -> None:
    from xgboost import XGBClassifier

    counter = CountTrainings()
    train, valid = classification_data()
    estimator = XGBClassifier(n_estimators=ROUNDS, n_jobs=1, callbacks=[counter.callback])
    X, y = train.drop(columns="label"), train["label"]
    scorer = ValidationScorer("classification", "auc", valid.drop(columns="label"), valid["label"])
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    staged_fit(estimator, X, y, scorer, TrialReporter(trial), stages=5)
    assert (counter.trainings, counter.rounds) == (1, ROUNDS)
    assert estimator.get_params()["callbacks"] == [counter.callback], "ours is taken out"
    reported = study.trials[0].intermediate_values
    assert sorted(reported) == [6, 12, 18, 24, 30]
    assert reported[30] == scorer(estimator)


def lightgbm_counting_fits() -> Any:
    """A LightGBM classifier that counts its fits (a subclass, as users write them)."""
    from lightgbm import LGBMClassifier

    class CountingLGBMClassifier(LGBMClassifier):
        fits = 0

        def fit(self, *args: Any, **kwargs: Any) -> Any:
            type(self).fits += 1
            return super().fit(*args, **kwargs)

    return CountingLGBMClassifier(n_estimators=ROUNDS, verbose=-1, random_state=0)


def test_lightgbm_trains_once_per_trial() -> None:
    estimator = lightgbm_counting_fits()
    train, valid = classification_data()
    result = tune(
        estimator,
        train,
        valid,
        "label",
        {"num_leaves": {"int": [4, 16]}},
        n_trials=3,
        pruner="none",
    )
    assert type(estimator).fits == 3, "one fit per trial, not one per stage"
    assert result.best_model is not None
    assert rounds_of(result.best_model.estimator) == ROUNDS
    assert all(len(t.intermediate) == 5 for t in result.trials)


def test_lightgbm_fits_in_one_go_when_validation_labels_are_new_to_it() -> None:
    from lightgbm import LGBMClassifier

    train, valid = classification_data()
    valid = valid.assign(label=valid["label"].where(valid.index % 10 > 0, 2))
    scorer = ValidationScorer(
        "classification", "accuracy", valid.drop(columns="label"), valid["label"]
    )
    study = optuna.create_study(direction="maximize")
    estimator = LGBMClassifier(n_estimators=ROUNDS, verbose=-1)
    X, y = train.drop(columns="label"), train["label"]
    assert staged_fit(estimator, X, y, scorer, TrialReporter(study.ask())) is None
    assert study.trials[0].intermediate_values == {}, "a validation set would be refused"
    assert rounds_of(estimator) == ROUNDS and 0.5 < scorer(estimator) < 1.0


def test_lightgbm_early_stopping_is_not_switched_on_by_the_stages() -> None:
    from lightgbm import LGBMClassifier

    train, valid = classification_data()
    scorer = ValidationScorer("classification", "auc", valid.drop(columns="label"), valid["label"])
    estimator = LGBMClassifier(n_estimators=ROUNDS, verbose=-1, early_stopping_round=2)
    trial = optuna.create_study(direction="maximize").ask()
    X, y = train.drop(columns="label"), train["label"]
    with pytest.raises(ValueError, match="For early stopping"):  # as a plain fit does
        staged_fit(estimator, X, y, scorer, TrialReporter(trial))


class PruneAtStep(optuna.pruners.BasePruner):
    """Prunes a trial once it has reported ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return self.step in trial.intermediate_values


@pytest.mark.parametrize("estimator", boosters())
def test_a_pruned_trial_stops_training_at_its_stage(estimator: Any) -> None:
    classifier = hasattr(estimator, "predict_proba")
    train, valid = classification_data() if classifier else regression_data()
    X, y = train.drop(columns="label"), train["label"]
    task, metric = ("classification", "auc") if classifier else ("regression", "rmse")
    scorer = ValidationScorer(task, metric, valid.drop(columns="label"), valid["label"])
    trial = optuna.create_study(pruner=PruneAtStep(12)).ask()
    with pytest.raises(TrialPruned, match="pruned at step 12"):
        staged_fit(estimator, X, y, scorer, TrialReporter(trial), stages=5)
    assert rounds_of(estimator) == 12, "the rounds after the pruning point were not trained"


def test_the_last_stage_is_recorded_without_asking_the_pruner() -> None:
    from xgboost import XGBRegressor

    train, valid = regression_data()
    result = tune(
        XGBRegressor(n_estimators=ROUNDS, n_jobs=1),
        train,
        valid,
        "label",
        {"max_depth": {"int": [2, 4]}},
        n_trials=2,
        pruner=PruneAtStep(ROUNDS),
    )
    assert [t.state for t in result.trials] == ["complete", "complete"]
    assert all(ROUNDS in t.intermediate for t in result.trials)


def test_estimators_without_stages_fit_in_one_go() -> None:
    from sklearn.tree import DecisionTreeClassifier

    train, valid = classification_data()
    scorer = ValidationScorer("classification", "auc", valid.drop(columns="label"), valid["label"])
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    estimator = DecisionTreeClassifier(max_depth=3, random_state=0)
    staged_fit(estimator, train.drop(columns="label"), train["label"], scorer, TrialReporter(trial))
    assert study.trials[0].intermediate_values == {}
    assert scorer(estimator) > 0.8
