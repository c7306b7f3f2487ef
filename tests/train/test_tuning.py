"""Tuning: trials stay inside the search space, the pruner stops bad trials, parallel
trials run, and a study with no successful trial fails with a sentence."""

from __future__ import annotations

import doctest
import importlib
import threading

import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from ctloop.errors import TuningError
from ctloop.train import SearchSpace, Trial, TrialReporter, optimize, tune

SPACE = {
    "max_depth": {"int": [1, 4]},
    "learning_rate": {"float": [0.01, 0.5], "log": True},
    "subsample": 0.9,
}


def test_tune_finds_parameters_inside_the_space_and_a_best_model(
    train_valid: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, valid = train_valid
    seen: list[Trial] = []
    result = tune(
        GradientBoostingClassifier(n_estimators=20, random_state=0),
        train,
        valid,
        "malignant",
        SPACE,
        n_trials=5,
        seed=3,
        on_trial=seen.append,
    )
    space = SearchSpace.parse(SPACE)
    assert [t.number for t in result.trials] == [0, 1, 2, 3, 4]
    assert sorted(t.number for t in seen) == [0, 1, 2, 3, 4]
    assert all(space.contains(t.params) for t in result.trials)
    assert space.contains(result.best_params) and result.best_params["subsample"] == 0.9
    assert (result.metric, result.direction) == ("auc", "maximize")
    complete = [t for t in result.trials if t.state == "complete"]
    assert result.best_score == max(t.score for t in complete if t.score is not None)
    assert all(len(t.intermediate) >= 3 for t in complete), "staged training reports"
    model = result.best_model
    assert model is not None and model.estimator.get_params()["n_estimators"] == 20
    assert model.estimator.max_depth == result.best_params["max_depth"]
    assert list(model.signature.input_names) == list(train.columns.drop("malignant"))


def test_tune_takes_a_factory_and_regression_metrics() -> None:
    from xgboost import XGBRegressor

    frame = pd.DataFrame({"x": [float(i % 17) for i in range(200)]})
    frame["y"] = 2.0 * frame["x"] + 1.0
    result = tune(
        lambda **p: XGBRegressor(n_estimators=10, n_jobs=1, **p),
        frame.iloc[:150],
        frame.iloc[150:],
        "y",
        {"max_depth": {"int": [1, 3]}},
        n_trials=3,
        n_jobs=2,
    )
    assert (result.metric, result.direction) == ("rmse", "minimize")
    assert result.best_model is not None and result.best_model.task == "regression"
    assert 1 <= result.best_params["max_depth"] <= 3
    assert len(result.trials) == 3


def test_the_median_pruner_stops_trials_worse_than_earlier_ones() -> None:
    # trials with a large x are bad at every step, so they fall below the median early
    def objective(params: dict, reporter: TrialReporter) -> float:
        for step in range(1, 6):
            reporter.report(step * (1.0 - params["x"]), step=step)
        return 5 * (1.0 - params["x"])

    result = optimize(objective, {"x": {"float": [0.0, 1.0]}}, n_trials=15, seed=7)
    assert result.pruned, "no trial was pruned"
    for trial in result.pruned:
        assert trial.score is None and trial.intermediate
        assert max(trial.intermediate) < 5
    assert result.best_score == max(t.score for t in result.trials if t.state == "complete")


def test_parallel_trials_run_in_threads() -> None:
    threads: set[str] = set()
    barrier = threading.Barrier(2, timeout=10)

    def objective(params: dict, reporter: TrialReporter) -> float:
        threads.add(threading.current_thread().name)
        if reporter.number < 2:
            barrier.wait()  # the first two trials must be running at the same time
        return float(params["n"])

    result = optimize(objective, {"n": {"int": [0, 9]}}, n_trials=4, n_jobs=2, pruner="none")
    assert len(threads) >= 2
    assert len(result.trials) == 4


def test_failed_trials_are_kept_and_all_failing_is_an_error() -> None:
    def sometimes(params: dict, reporter: TrialReporter) -> float:
        if params["n"] % 2:
            raise ValueError(f"odd n={params['n']}")
        return float(params["n"])

    result = optimize(sometimes, {"n": {"choice": [1, 2]}}, n_trials=6, seed=0)
    failed = [t for t in result.trials if t.state == "failed"]
    assert failed and all(t.error == "ValueError: odd n=1" for t in failed)
    assert result.best_params == {"n": 2}

    def never(params: dict, reporter: TrialReporter) -> float:
        raise ValueError("broken estimator")

    with pytest.raises(TuningError, match=r"no trial of the study finished.*broken estimator"):
        optimize(never, {"n": {"int": [1, 2]}}, n_trials=2)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"direction": "up"}, "direction 'up' is unknown"),
        ({"n_trials": None}, "needs n_trials or timeout"),
        ({"n_trials": 0}, "run at least 1 trial"),
        ({"pruner": "hyperband"}, "pruner 'hyperband' is unknown"),
        ({"n_jobs": 0}, "n_jobs is 0"),
    ],
)
def test_bad_settings_fail_before_any_trial(kwargs: dict, fragment: str) -> None:
    with pytest.raises(TuningError) as info:
        optimize(lambda p, r: 0.0, {"n": {"int": [1, 2]}}, **kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "ctloop.train",
        "ctloop.train._space",
        "ctloop.train._checkpointing",
        "ctloop.train._fitting",
        "ctloop.train._tuning",
        "ctloop.train._parallel",
        "ctloop.train._workers",
        "ctloop.train._staging",
        "ctloop.train._objective",
        "ctloop.train._threads",
    ],
)
def test_docstring_examples_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
