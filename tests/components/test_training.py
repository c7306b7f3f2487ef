"""The training components in real pipelines: ``fit`` stores a Model and logs metrics,
``tune`` records each trial as a child execution, and checkpoints let a killed training
step continue where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctloop.artifacts.model import Model
from ctloop.components import tune
from ctloop.components.training import PARENT_TAG, make_estimator
from ctloop.errors import CtloopError, ParameterError, StepError
from ctloop.pipeline._runner import resume_run
from ctloop.store.workspace import Workspace
from ctloop.train import SearchSpace
from tests.components import training_pipelines as tp

REPO = Path(__file__).resolve().parents[2]


def _checkpoint_objects(home: Path) -> list[Path]:
    return sorted((home / "artifacts" / "checkpoints").rglob("*.bin"))


def test_fit_step_stores_a_model_and_logs_training_metrics(home: Path) -> None:
    result = tp.fit_xgboost.run(rounds=40)
    model = result.load("fit")
    assert isinstance(model, Model) and model.flavor == "xgboost"
    assert model.estimator.get_booster().num_boosted_rounds() == 40
    assert list(model.signature.input_names) == ["delay", "distance"]
    assert model.training_statistics is not None
    meta = Workspace.open().metadata
    metrics = {m.key: m.value for m in meta.get_metrics(result.run_id)}
    assert metrics["auc"] > 0.8 and metrics["resumed_from"] == 0
    assert metrics["ctloop.checkpoint"] == 30, "checkpoints every 10 rounds, recorded at once"
    assert _checkpoint_objects(home) == [], "a finished fit deletes its checkpoints"


@pytest.mark.parametrize("executor", ["local", "process"])
def test_tune_records_every_trial_as_a_child_execution(home: Path, executor: str) -> None:
    result = tp.tune_boosting.run(n_trials=4, n_jobs=2, executor=executor)
    best_params = result.load("tune", "best_params")
    model = result.load("tune", "model")
    assert SearchSpace.parse(tp.SPACE).contains(best_params)
    assert isinstance(model, Model) and model.estimator.max_depth == best_params["max_depth"]

    meta = Workspace.open().metadata
    executions = meta.list_executions(result.run_id)
    parent = next(x for x in executions if x.step == "tune")
    trials = sorted(
        (x for x in executions if x.step.startswith("tune/trial-")), key=lambda x: x.step
    )
    assert [x.step for x in trials] == [f"tune/trial-{n}" for n in range(4)]
    assert all(x.status in ("succeeded", "skipped") for x in trials)
    tags = meta.get_tags(result.run_id)
    for trial in trials:
        assert {t.key: t.value for t in tags if t.execution_id == trial.id}[PARENT_TAG] == parent.id
        assert set(trial.parameters) == {"max_depth", "learning_rate"}
    scores = [m for m in meta.get_metrics(result.run_id, "score")]
    finished = [x for x in trials if x.status == "succeeded"]
    assert {m.execution_id for m in scores} == {x.id for x in finished}
    best = max(m.value for m in scores)
    parent_metrics = {
        m.key: m.value for m in meta.get_metrics(result.run_id) if m.execution_id == parent.id
    }
    assert parent_metrics["best_auc"] == pytest.approx(best)
    assert parent_metrics["trials"] == 4


def test_tune_called_as_a_function_records_nothing_and_needs_one_space(
    home: Path,
) -> None:
    data = tp.make_data(120)
    train, valid = data.iloc[:80], data.iloc[80:]
    best, model = tune(
        train,
        valid,
        label="late",
        estimator="sklearn.tree.DecisionTreeClassifier",
        space={"max_depth": {"int": [1, 3]}},
        n_trials=2,
    )
    assert 1 <= best["max_depth"] <= 3 and model.task == "classification"
    with pytest.raises(ParameterError, match="exactly one search space"):
        tune(train, valid, label="late", estimator="sklearn.tree.DecisionTreeClassifier")


@pytest.mark.parametrize("executor", ["local", "process"])
def test_make_fit_step_fits_an_estimator_built_in_code(home: Path, executor: str) -> None:
    result = tp.built_in_code.run(max_depth=2, executor=executor)
    model = result.load("fit_scaled_tree")
    assert isinstance(model, Model) and model.task == "classification"
    assert model.estimator.steps[-1][1].get_depth() <= 2
    metrics = {m.key for m in Workspace.open().metadata.get_metrics(result.run_id)}
    assert {"auc", "accuracy"} <= metrics


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("sklearn.tree.NoSuchTree", "cannot be imported"),
        ("os.path.join", "is not an estimator class"),
        ("sklearn.tree.DecisionTreeClassifier", "rejects params"),
    ],
)
def test_make_estimator_refuses_what_is_not_an_estimator(path: str, fragment: str) -> None:
    with pytest.raises(ParameterError, match=fragment):
        make_estimator(path, {"no_such_param": 1} if "Decision" in path else None)


def test_a_user_loop_resumes_from_its_last_checkpoint(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "fail-once"
    marker.touch()
    monkeypatch.setenv("FAIL_ONCE", str(marker))
    with pytest.raises(StepError, match="went away at epoch 3") as info:
        tp.user_loop.run(total=6)
    run_id = info.value.run_id
    result = resume_run(run_id)
    assert result.load("epochs") == {"weights": 6.0, "started_at": 3}
    meta = Workspace.open().metadata
    retry = [x for x in meta.list_executions(run_id) if x.step == "epochs"][-1]
    tags = {t.key: t.value for t in meta.get_tags(run_id) if t.execution_id == retry.id}
    assert tags["ctloop.resumed_from"] == "3"
    # a later run of the same step finds the checkpoint of a succeeded step and ignores it
    again = tp.user_loop.run(total=6, cache=False)
    assert again.load("epochs") == {"weights": 6.0, "started_at": 0}


def test_checkpoint_outside_a_step_says_where_to_use_it() -> None:
    from ctloop import checkpoint

    with pytest.raises(CtloopError, match="outside a running step"):
        checkpoint.latest()


def test_a_killed_training_step_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env |= {"CTLOOP_HOME": str(home), "PYTHONPATH": str(REPO), "SLOW_ROUND_S": "0.03"}
    reference = f"{REPO / 'tests' / 'components' / 'training_pipelines.py'}:long_training"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctloop", "run", reference],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    index = None
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            found = list((home / "artifacts" / "checkpoints").glob("*/latest.json"))
            if found and json.loads(found[0].read_text())["step"] >= 30:
                index = found[0]
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert index is not None, "the training step wrote no checkpoint before it finished"
    killed_at = json.loads(index.read_text())["step"]
    assert 30 <= killed_at < 200

    env["SLOW_ROUND_S"] = "0"
    done = subprocess.run(
        [sys.executable, "-m", "ctloop", "resume", "latest"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    os.environ["CTLOOP_HOME"] = str(home)
    try:
        stores = Workspace.open()
    finally:
        del os.environ["CTLOOP_HOME"]
    meta = stores.metadata
    (run,) = meta.list_runs()
    assert run.status == "succeeded"
    attempts = [x for x in meta.list_executions(run.id) if x.step == "long_fit"]
    assert [x.status for x in attempts] == ["failed", "succeeded"]
    resumed = {m.key: m.value for m in meta.get_metrics(run.id) if m.execution_id == attempts[1].id}
    assert resumed["resumed_from"] >= killed_at >= 30
    tags = {t.key: t.value for t in meta.get_tags(run.id) if t.execution_id == attempts[1].id}
    assert int(tags["ctloop.resumed_from"]) == resumed["resumed_from"]
    from ctloop.artifacts import load_value

    (output,) = [e for e in meta.events_of_execution(attempts[1].id) if e.kind == "output"]
    model = load_value(
        meta.get_artifact(output.artifact_id), stores.artifacts, cache_dir=tmp_path / "c"
    )
    assert model.estimator.get_booster().num_boosted_rounds() == 200
