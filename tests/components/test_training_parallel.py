"""``tune`` with ``parallel="auto"`` follows the run's executor: under ``process`` its
trials run in worker processes of their own, under ``ray`` in Ray tasks; either way the
step's process records every trial as a child execution ``tune/trial-N``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctloop import pipeline
from ctloop.components import tune
from ctloop.components.training import PARENT_TAG
from ctloop.store.workspace import Workspace
from tests.components import training_pipelines as tp


@pipeline
def tune_tree(n_trials: int = 6) -> None:
    train, valid = tp.split(tp.make_data())
    tune(
        train,
        valid,
        label="late",
        estimator="sklearn.tree.DecisionTreeClassifier",
        space={"max_depth": {"int": [1, 4]}},
        n_trials=n_trials,
        n_jobs=2,
    )


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_trials_run_where_the_run_runs_and_are_all_recorded(
    home: Path, executor: str, request: pytest.FixtureRequest
) -> None:
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
    result = tune_tree.run(n_trials=6, executor=executor)
    meta = Workspace.open().metadata
    executions = meta.list_executions(result.run_id)
    parent = next(x for x in executions if x.step == "tune")
    trials = sorted(x.step for x in executions if x.step.startswith("tune/trial-"))
    assert trials == sorted(f"tune/trial-{n}" for n in range(6))
    tags = meta.get_tags(result.run_id)
    assert {t.value for t in tags if t.key == PARENT_TAG} == {parent.id}
    params = {p.key: p.value for p in meta.get_params(result.run_id) if p.execution_id == parent.id}
    assert params["parallel"] == {"process": "processes", "ray": "ray"}[executor]
    workers = [t.value for t in tags if t.key == "ctloop.trial_worker"]
    assert len(workers) == 6 and not any(w.endswith(f":{os.getpid()}") for w in workers)
