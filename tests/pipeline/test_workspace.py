"""Runs on an explicit workspace: steps reach it with ``current_workspace()``, a run
writes into it and nowhere else, worker processes reopen it, and an in-memory workspace
is refused by executors that run steps in other processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import ctloop
from ctloop.config import Settings
from ctloop.errors import (
    CtloopError,
    ModelNotFoundError,
    NotFoundError,
    PipelineError,
    StepError,
)
from ctloop.pipeline._runner import resume_run, run_pipeline
from ctloop.pipeline.tracking import current_workspace, use_workspace
from ctloop.store.workspace import Workspace
from tests.pipeline import workspace_pipelines as wp


@pytest.fixture
def default_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's own store (what settings name), kept apart from the workspaces."""
    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "default"))
    for name in ("CTLOOP_STORE_URL", "CTLOOP_ARTIFACT_URL", "CTLOOP_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "default"


def sqlite_workspace(folder: Path) -> Workspace:
    return Workspace.open(f"sqlite:///{folder / 'metadata.db'}", artifacts=str(folder / "art"))


def test_a_step_gets_the_run_s_own_workspace_object(default_home: Path, tmp_path: Path) -> None:
    workspace = sqlite_workspace(tmp_path / "a")
    result = wp.locate.run(workspace=workspace, executor="local")
    seen = result.load("where_am_i")
    assert seen["workspace_id"] == id(workspace) and seen["pid"] == os.getpid()
    assert result.workspace is workspace


def test_current_workspace_outside_a_step_is_a_sentence(default_home: Path) -> None:
    with pytest.raises(CtloopError, match=r"outside a running step.*use_workspace"):
        current_workspace()
    workspace = Workspace.open()
    with use_workspace(workspace):
        assert current_workspace() is workspace
    with pytest.raises(CtloopError, match="outside a running step"):
        current_workspace()


def test_a_run_writes_into_its_workspace_and_not_the_default_store(
    default_home: Path, tmp_path: Path
) -> None:
    a, b = sqlite_workspace(tmp_path / "a"), sqlite_workspace(tmp_path / "b")
    result = run_pipeline(wp.locate, {"tag": "in-a"}, workspace=a)
    assert a.metadata.get_run(result.run_id).status == "succeeded"
    assert a.registry.get_model("in-a").name == "in-a"
    assert result.load("count_runs") == 1
    assert not (default_home / "metadata.db").exists()  # the default store was never opened
    for other in (b, Workspace.from_settings(Settings.load())):
        assert other.metadata.list_runs() == []
        with pytest.raises(ModelNotFoundError):
            other.registry.get_model("in-a")
    output = result.outputs["where_am_i"]["output"]
    assert a.artifacts.has(output.digest) and not b.artifacts.has(output.digest)


def test_the_process_executor_reopens_the_workspace_in_its_workers(
    default_home: Path, tmp_path: Path
) -> None:
    workspace = sqlite_workspace(tmp_path / "a")
    result = wp.locate.run(workspace=workspace, executor="process", tag="from-a-worker")
    seen = result.load("where_am_i")
    assert seen["pid"] != os.getpid()  # it ran in a worker process
    assert (seen["store_url"], seen["artifact_url"]) == (
        workspace.store_url,
        workspace.artifact_url,
    )
    written = workspace.registry.get_model("from-a-worker")  # the worker's write, seen here
    assert written.description == f"written by pid {seen['pid']}"
    assert workspace.metadata.get_run(result.run_id).executor == "process"
    assert Workspace.from_settings(Settings.load()).metadata.list_runs() == []


def test_resume_runs_on_the_given_workspace(default_home: Path, tmp_path: Path) -> None:
    workspace = sqlite_workspace(tmp_path / "a")
    first = wp.locate.run(workspace=workspace, tag="resumed")
    with pytest.raises(NotFoundError, match=first.run_id[:8]):
        resume_run(first.run_id)  # the default store has no such run
    again = resume_run(first.run_id, workspace=workspace)
    assert again.run_id == first.run_id and again.workspace is workspace


def test_ctloop_resume_continues_a_run_of_the_given_workspace(default_home: Path) -> None:
    with Workspace.in_memory() as workspace:
        with pytest.raises(StepError, match="ready") as caught:
            wp.needs_model.run(workspace=workspace)
        workspace.registry.create_model("ready")
        resumed = ctloop.resume(caught.value.run_id, workspace=workspace)
        assert resumed.run_id == caught.value.run_id and resumed.workspace is workspace
        assert resumed.load("model_named") == "ready"
        assert workspace.metadata.get_run(resumed.run_id).status == "succeeded"
    assert not (default_home / "metadata.db").exists(), "the project's store is untouched"


def test_an_in_memory_workspace_runs_on_the_local_executor_only(default_home: Path) -> None:
    with Workspace.in_memory() as workspace:
        result = wp.locate.run(workspace=workspace, tag="in-memory")
        assert workspace.registry.get_model("in-memory").name == "in-memory"
        assert result.load("count_runs") == 1
        for executor in ("process", "ray"):
            with pytest.raises(
                PipelineError,
                match=rf"executor '{executor}' runs steps in other processes, which cannot reach an in-memory workspace; use executor='local'",
            ):
                wp.locate.run(workspace=workspace, executor=executor, tag="refused")
        assert len(workspace.metadata.list_runs()) == 1  # refused before a run was recorded
    assert not (default_home / "metadata.db").exists()
