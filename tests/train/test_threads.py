"""Fits, tuning trials and their scoring keep native thread pools to the cores given."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_info

from ctloop.errors import TrainingError
from ctloop.train import fit, tune
from ctloop.train._threads import cpu_budget, held_threads, thread_limits


def _openmp_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    late = (X[:, 0] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "late": late})


def test_a_lightgbm_fit_on_one_core_runs_one_openmp_thread(table: pd.DataFrame) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    seen: list[tuple[set[int], Any]] = []

    def watch(env: Any) -> None:
        if env.iteration == 0:
            seen.append((_openmp_threads(), env.model.params.get("num_threads")))

    class Watched(lightgbm.LGBMClassifier):
        def fit(self, X: Any, y: Any, **kwargs: Any) -> Any:
            return super().fit(X, y, callbacks=[watch], **kwargs)

    result = fit(Watched(n_estimators=3, verbose=-1), table, label="late", cores=1)
    assert seen == [({1}, 1)]  # OpenMP limited, and LightGBM's own setting held to 1
    assert result.model.estimator.get_params()["n_jobs"] is None  # the user's setting back


def test_the_cores_variable_is_the_budget_of_a_plain_fit(
    table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTLOOP_CORES", "1")
    seen: list[tuple[set[int], Any]] = []

    class Watched(KNeighborsClassifier):
        def fit(self, X: Any, y: Any) -> Any:
            seen.append(({p["num_threads"] for p in threadpool_info()}, self.n_jobs))
            return super().fit(X, y)

    fit(Watched(n_jobs=-1), table, label="late")
    assert seen == [({1}, 1)]
    monkeypatch.setenv("CTLOOP_CORES", "two")
    with pytest.raises(TrainingError, match="CTLOOP_CORES='two' is not a number of CPUs"):
        cpu_budget()


def test_trials_in_threads_share_the_cores(
    table: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTLOOP_CORES", "4")
    seen: list[Any] = []

    class Watched(KNeighborsClassifier):
        def fit(self, X: Any, y: Any) -> Any:
            seen.append(self.n_jobs)
            return super().fit(X, y)

    space = {"n_neighbors": {"int": [3, 15]}}
    train, valid = table.iloc[:300], table.iloc[300:]
    tune(Watched(n_jobs=-1), train, valid, "late", space, n_trials=4, n_jobs=2, stages=1)
    assert seen and set(seen) == {2}  # four cores, two trials at a time: two each


def test_a_lower_setting_is_kept_and_nested_estimators_are_held() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with held_threads(RandomForestClassifier(n_jobs=2), cores=4) as forest:
        assert forest.n_jobs == 2
    chain = make_pipeline(StandardScaler(), RandomForestClassifier(n_jobs=-1))
    with held_threads(chain, cores=3):
        assert chain.get_params()["randomforestclassifier__n_jobs"] == 3
    assert chain.get_params()["randomforestclassifier__n_jobs"] == -1


def test_limits_nested_or_in_threads_are_restored_once() -> None:
    before = {p["filepath"]: p["num_threads"] for p in threadpool_info()}
    with thread_limits(1), thread_limits(2):
        assert {p["num_threads"] for p in threadpool_info()} <= {1}
    assert {p["filepath"]: p["num_threads"] for p in threadpool_info()} == before
    with pytest.raises(TrainingError, match="cores is 0"):
        cpu_budget(0)


def test_predict_frame_on_raw_text_names_the_fix(table: pd.DataFrame) -> None:
    lightgbm = pytest.importorskip("lightgbm")
    from ctloop.errors import SignatureError

    carriers = np.array(["UA", "AA", "DL", "B6"])[np.arange(len(table)) % 4]
    train = table.assign(carrier=pd.Categorical(carriers))
    model = fit(lightgbm.LGBMClassifier(n_estimators=3, verbose=-1), train, label="late").model
    raw = train.drop(columns="late").assign(carrier=carriers)  # text, not categories
    with pytest.raises(SignatureError, match=r"'carrier' hold raw text.*allow_extra=True"):
        model.predict_frame(raw)
    assert model.predict(raw.to_dict("records"), allow_extra=True).shape == (len(raw),)
