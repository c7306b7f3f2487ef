"""executor="ray": steps run as Ray tasks and are recorded, cached and failed exactly as
with the local executor; a Ray worker that dies is a failed step, never a hung run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from ctloop import pipeline, step
from ctloop.config import Settings
from ctloop.errors import ConfigError, RunFailedError, StepError
from ctloop.store.workspace import Workspace
from tests.pipeline import sample_pipelines as sp

pytestmark = pytest.mark.usefixtures("ray_cluster")  # one local Ray for the module


@step
def kill_own_worker() -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


@pipeline
def dies() -> None:
    kill_own_worker()


def test_ray_runs_steps_and_caches_them_like_local(home: Path, calls, csv_path: Path) -> None:
    first = sp.regression.run(path=csv_path, executor="ray")
    assert first.status == "succeeded"
    assert sorted(calls.take()) == ["fit", "load", "score", "split"]
    local = sp.regression.run(path=csv_path, cache=False)
    calls.take()
    assert first.load("score") == local.load("score")

    second = sp.regression.run(path=csv_path, executor="ray")
    assert second.cached_steps == ["load", "split", "fit", "score"]
    assert calls.take() == [], "cached steps do not run again"

    meta = Workspace.open().metadata
    assert meta.get_run(first.run_id).executor == "ray"
    metrics = {m.key: m.value for m in meta.get_metrics(first.run_id)}
    assert metrics["train_rows"] == 150, "tracking calls in Ray workers are recorded"
    load = next(x for x in meta.list_executions(first.run_id) if x.step == "load")
    assert load.log_uri is not None
    assert f"loading {csv_path}" in Workspace.open().artifacts.read_object(load.log_uri).decode()


@pytest.mark.parametrize("home", ["sqlite"], indirect=True)
def test_a_failing_step_fails_the_run_and_other_branches_finish(home: Path, calls) -> None:
    with pytest.raises(StepError, match="bad value 3") as caught:
        sp.branches.run(executor="ray")
    assert "ValueError: bad value 3" in caught.value.traceback_text
    assert calls.take().count("total") == 1, "the healthy branch finished"
    meta = Workspace.open().metadata
    status = {x.step: x.status for x in meta.list_executions(caught.value.run_id)}
    assert (status["boom"], status["total"], status["total_2"]) == (
        "failed",
        "succeeded",
        "skipped",
    )


@pytest.mark.parametrize("home", ["sqlite"], indirect=True)
def test_a_killed_ray_worker_is_a_failed_step(home: Path) -> None:
    with pytest.raises(RunFailedError, match="the Ray worker running step 'kill_own_worker' died"):
        dies.run(executor="ray")
    meta = Workspace.open().metadata
    run = meta.list_runs()[0]
    execution = meta.list_executions(run.id)[0]
    assert (run.status, execution.status) == ("failed", "failed")
    assert "WorkerCrashedError" in (execution.error or "")


def test_ray_is_a_known_executor_and_its_address_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CTLOOP_EXECUTOR", "ray")
    monkeypatch.delenv("CTLOOP_RAY_ADDRESS", raising=False)
    (tmp_path / "ctloop.yaml").write_text("ray_address: ray://head:10001\n")
    assert Settings.load().executor == "ray"
    assert Settings.load().ray_address == "ray://head:10001"
    monkeypatch.setenv("CTLOOP_RAY_ADDRESS", "auto")
    assert Settings.load().ray_address == "auto"
    monkeypatch.setenv("CTLOOP_EXECUTOR", "dask")
    with pytest.raises(ConfigError, match="use one of local, process, ray"):
        Settings.load()
