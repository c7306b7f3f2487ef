"""Trials in worker processes and on Ray: one shared study, every trial recorded once in
this process, the pruner sees every worker's trials, the budget and the timeout hold for
the whole study, and a failing or killed worker is reported, never waited on forever."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from ctloop.errors import TuningError
from ctloop.train import Trial, TrialReporter, optimize, tune

PARALLEL = ["processes", "ray"]


@pytest.fixture(params=PARALLEL)
def parallel(request: pytest.FixtureRequest) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return str(request.param)


def quadratic(params: dict[str, Any], reporter: TrialReporter) -> float:
    """Best at x = 2; reports three steps so the pruner has something to compare."""
    for step in (1, 2, 3):
        reporter.report(-((params["x"] - 2.0) ** 2) * step / 3, step=step)
    return -((params["x"] - 2.0) ** 2)


def test_workers_find_the_optimum_and_every_trial_is_reported_once(parallel: str) -> None:
    seen: list[Trial] = []
    result = optimize(
        quadratic,
        {"x": {"float": [-10.0, 10.0]}},
        n_trials=30,
        n_jobs=2,
        seed=1,
        parallel=parallel,
        on_trial=seen.append,
    )
    assert abs(result.best_params["x"] - 2.0) < 1.0
    assert sorted(t.number for t in seen) == list(range(30)), "each trial once, in this process"
    assert [t.number for t in result.trials] == list(range(30))
    assert result.best_score == max(t.score for t in result.trials if t.score is not None)


def test_tune_brings_back_the_best_estimator_from_its_worker(parallel: str) -> None:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    X, y = make_classification(n_samples=600, n_features=8, n_informative=5, random_state=0)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)]).assign(label=y)
    train, valid = frame.iloc[:400], frame.iloc[400:]
    space = {"max_depth": {"int": [2, 6]}, "learning_rate": {"float": [0.03, 0.3], "log": True}}
    result = tune(
        HistGradientBoostingClassifier(max_iter=20, early_stopping=False, random_state=0),
        train,
        valid,
        "label",
        space,
        n_trials=8,
        n_jobs=2,
        parallel=parallel,
    )
    assert len(result.trials) == 8 and result.best_score > 0.9
    assert result.best_model is not None
    estimator = result.best_model.estimator
    assert estimator.max_depth == result.best_params["max_depth"]
    proba = estimator.predict_proba(valid.drop(columns="label"))[:, 1]
    assert roc_auc_score(valid["label"], proba) == pytest.approx(result.best_score)


class ThreadsSeen(DecisionTreeClassifier):
    """A tree that notes the ``n_jobs`` it was fitted with."""

    def __init__(self, max_depth: int | None = None, n_jobs: int | None = None) -> None:
        super().__init__(max_depth=max_depth)
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any, **kwargs: Any) -> ThreadsSeen:
        self.n_jobs_seen_ = self.n_jobs
        return super().fit(X, y, **kwargs)


def test_worker_processes_share_the_cpus_and_the_model_keeps_its_setting(
    train_valid: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    train, valid = train_valid
    space = {"max_depth": {"int": [1, 3]}}
    result = tune(
        ThreadsSeen(), train, valid, "malignant", space, n_trials=4, n_jobs=2, parallel="processes"
    )
    assert result.best_model is not None
    estimator = result.best_model.estimator
    assert estimator.n_jobs_seen_ == max(1, (os.cpu_count() or 1) // 2)
    assert estimator.n_jobs is None


class TwoSpeeds:
    """The first worker to start runs quick trials that improve with their number; the
    other worker's first trial waits until the first worker has finished four trials,
    then reports a score far below them. The median pruner starts pruning after three
    finished trials, and this worker has finished none: it can only be pruned if the
    pruner sees the first worker's trials."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.role: str | None = None

    def __call__(self, params: dict[str, Any], reporter: TrialReporter) -> float:
        if self.role is None:
            self.role = "first" if _claim(self.folder / "first") else "second"
            if self.role == "second":
                return self._poor_trial(reporter)
        if self.role == "first":
            (self.folder / f"first-{reporter.number}").touch()
            if len(self._firsts()) >= 6:  # keep the budget until the other worker is in
                _wait_for(lambda: (self.folder / "second").exists())
        value = float(reporter.number)
        for step in (1, 2):
            reporter.report(value, step=step)
        return value

    def _poor_trial(self, reporter: TrialReporter) -> float:
        (self.folder / "second").write_text(str(reporter.number))
        _wait_for(lambda: len(self._firsts()) >= 5)  # 5 started: 4 finished
        reporter.report(-1e9, step=1)
        return -1e9

    def _firsts(self) -> list[Path]:
        return list(self.folder.glob("first-*"))


def _claim(path: Path) -> bool:
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def _wait_for(condition: Callable[[], bool], limit_s: float = 60.0) -> None:
    give_up = time.monotonic() + limit_s  # a guard against a hang, not a timed assertion
    while not condition() and time.monotonic() < give_up:
        time.sleep(0.02)


def test_the_pruner_sees_the_trials_of_other_workers(parallel: str, tmp_path: Path) -> None:
    result = optimize(
        TwoSpeeds(tmp_path), {"x": {"float": [0.0, 1.0]}}, n_trials=12, n_jobs=2, parallel=parallel
    )
    poor = int((tmp_path / "second").read_text())
    states = {t.number: t.state for t in result.trials}
    assert states[poor] == "pruned", "the second worker's poor trial was pruned"
    assert len(result.trials) == 12


def sleepy(params: dict[str, Any], reporter: TrialReporter) -> float:
    time.sleep(0.05)
    return params["x"]


def test_the_timeout_holds_for_the_whole_study() -> None:
    seen: list[Trial] = []
    result = optimize(
        sleepy,
        {"x": {"float": [0.0, 1.0]}},
        n_trials=100_000,
        timeout=1.0,
        n_jobs=2,
        parallel="processes",
        on_trial=seen.append,
    )
    assert 0 < len(result.trials) < 100_000
    assert sorted(t.number for t in seen) == [t.number for t in result.trials]


def odd_fails(params: dict[str, Any], reporter: TrialReporter) -> float:
    if params["n"] % 2:
        raise ValueError(f"odd n={params['n']}")
    return float(params["n"])


def always_fails(params: dict[str, Any], reporter: TrialReporter) -> float:
    raise ValueError("broken estimator")


def test_errors_in_workers_come_back_as_failed_trials() -> None:
    space = {"n": {"choice": [1, 2]}}
    result = optimize(odd_fails, space, n_trials=8, n_jobs=2, parallel="processes")
    failed = [t for t in result.trials if t.state == "failed"]
    assert failed and all(t.error == "ValueError: odd n=1" for t in failed)
    assert result.best_params == {"n": 2}
    with pytest.raises(TuningError, match=r"no trial of the study finished.*broken estimator"):
        optimize(always_fails, space, n_trials=4, n_jobs=2, parallel="processes")


def dies_on_trial_three(params: dict[str, Any], reporter: TrialReporter) -> float:
    if reporter.number == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return params["x"]


def test_a_killed_worker_fails_the_study_with_a_sentence(parallel: str) -> None:
    seen: list[Trial] = []
    with pytest.raises(TuningError, match="a tuning worker died while running trials"):
        optimize(
            dies_on_trial_three,
            {"x": {"float": [0.0, 1.0]}},
            n_trials=50,
            n_jobs=2,
            parallel=parallel,
            on_trial=seen.append,
        )
    killed = next(t for t in seen if t.number == 3)
    assert killed.state == "failed" and "worker stopped" in (killed.error or "")


def test_an_objective_workers_cannot_import_is_refused_by_name() -> None:
    with pytest.raises(TuningError, match=r"objective '.*<lambda>' cannot be sent.*module level"):
        optimize(lambda p, r: 1.0, {"x": {"int": [0, 3]}}, n_jobs=2, parallel="processes")
    with pytest.raises(TuningError, match="parallel='gpu' is unknown"):
        optimize(quadratic, {"x": {"int": [0, 3]}}, parallel="gpu")
