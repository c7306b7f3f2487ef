"""executor="process": independent steps run at the same time in worker processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctloop import pipeline, step
from ctloop.errors import PipelineDefinitionError
from ctloop.store.workspace import Workspace
from tests.pipeline import sample_pipelines as sp


def test_independent_steps_overlap_in_time(home: Path, calls) -> None:
    result = sp.parallel.run(seconds=1.5, executor="process")
    assert result.status == "succeeded"
    assert result.load("total") == 1
    meta = Workspace.open().metadata
    sleepers = [x for x in meta.list_executions(result.run_id) if x.step.startswith("slow")]
    assert len(sleepers) == 4
    overlapping = [
        (a.step, b.step)
        for a in sleepers
        for b in sleepers
        if a.step < b.step and a.started_at < b.ended_at and b.started_at < a.ended_at
    ]
    assert overlapping, "no two independent steps ran at the same time"
    assert meta.get_run(result.run_id).executor == "process"


def test_process_executor_matches_local_results(home: Path, calls, csv_path: Path) -> None:
    local = sp.regression.run(path=csv_path, cache=False)
    pooled = sp.regression.run(path=csv_path, cache=False, executor="process")
    assert pooled.load("score") == local.load("score")
    log_uri = Workspace.open().metadata.list_executions(pooled.run_id)[0].log_uri
    assert f"loading {csv_path}" in Workspace.open().artifacts.read_object(log_uri).decode()


def test_a_step_in_a_worker_process_is_held_to_its_cores(home: Path) -> None:
    seen = sp.cores.run(executor="process").load("cores_given")
    cores = max(1, (os.cpu_count() or 1) // max(1, min(os.cpu_count() or 1, 8)))
    assert seen == {"cores": cores, "omp": str(cores)}
    local = sp.cores.run(executor="local").load("cores_given")
    assert local["cores"] is None, "a step in this process is given no share"


def test_step_defined_in_a_function_is_refused_clearly(home: Path) -> None:
    @step
    def inner(x: int) -> int:
        return x

    @pipeline
    def local_only():
        inner(1)

    with pytest.raises(PipelineDefinitionError, match="defined inside a function"):
        local_only.run(executor="process")
    assert Workspace.open().metadata.list_runs() == []  # refused before a run was recorded
    assert local_only.run(executor="local").load("inner") == 1
