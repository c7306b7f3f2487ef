"""The runner end to end on the embedded store: caching, failure, resume, tracking."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ctloop.errors import (
    MissingInputError,
    ParameterError,
    PipelineDefinitionError,
    StepError,
    UnsupportedTypeError,
)
from ctloop.pipeline._runner import resume_run
from ctloop.store.workspace import Workspace
from tests.pipeline import sample_pipelines as sp


def test_run_records_steps_outputs_and_metadata(home: Path, calls, csv_path: Path) -> None:
    result = sp.regression.run(path=csv_path)
    assert result.status == "succeeded"
    assert calls.take() == ["load", "split", "fit", "score"]
    assert result.load("score")["mse"] < 0.05
    meta = Workspace.open().metadata
    run = meta.get_run(result.run_id)
    assert run.pipeline == "regression" and run.trigger == "manual" and run.status == "succeeded"
    assert run.parameters["path"] == str(csv_path) and run.parameters["degree"] == 1
    assert run.ended_at is not None and run.ended_at >= run.started_at
    executions = meta.list_executions(run.id)
    assert [x.step for x in executions] == ["load", "split", "fit", "score"]
    assert all(x.status == "succeeded" and x.cache_key for x in executions)
    assert executions[0].log_uri  # load printed; the silent steps store no log
    assert executions[1].log_uri is None
    split_events = meta.events_of_execution(executions[1].id)
    assert sorted((e.kind, e.name) for e in split_events) == [
        ("input", "data"),
        ("output", "test"),
        ("output", "train"),
    ]


def test_second_run_is_fully_cached(home: Path, calls, csv_path: Path) -> None:
    first = sp.regression.run(path=csv_path)
    calls.take()
    second = sp.regression.run(path=csv_path)
    assert calls.take() == []
    assert second.cached_steps == ["load", "split", "fit", "score"]
    meta = Workspace.open().metadata
    cached = meta.list_executions(second.run_id)
    originals = {x.step: x.id for x in meta.list_executions(first.run_id)}
    assert all(x.status == "cached" and x.cached_from == originals[x.step] for x in cached)
    assert second.load("score") == first.load("score")


def test_parameter_change_invalidates_only_downstream(home: Path, calls, csv_path: Path) -> None:
    sp.regression.run(path=csv_path)
    calls.take()
    sp.regression.run(path=csv_path, degree=2)
    assert calls.take() == ["fit", "score"]


def test_edited_input_file_is_a_cache_miss(home: Path, calls, csv_path: Path) -> None:
    sp.regression.run(path=csv_path)
    calls.take()
    frame = pd.read_csv(csv_path)
    frame.loc[0, "y"] = 1000.0
    frame.to_csv(csv_path, index=False)
    sp.regression.run(path=csv_path)
    assert calls.take() == ["load", "split", "fit", "score"]


def test_cache_off_per_run(home: Path, calls, csv_path: Path) -> None:
    sp.regression.run(path=csv_path)
    calls.take()
    sp.regression.run(path=csv_path, cache=False)
    assert calls.take() == ["load", "split", "fit", "score"]


def test_cache_hit_with_deleted_blobs_recomputes(home: Path, calls, csv_path: Path) -> None:
    first = sp.regression.run(path=csv_path)
    calls.take()
    stores = Workspace.open()
    fit_output = first.outputs["fit"]["output"]
    for entry in fit_output.files:
        stores.artifacts.delete_blob(entry.digest)
    second = sp.regression.run(path=csv_path)
    assert calls.take() == ["fit"]
    assert second.status == "succeeded"
    assert second.load("fit").shape == (2,)


def test_failure_stops_dependents_and_other_branches_finish(home: Path, calls) -> None:
    with pytest.raises(StepError) as caught:
        sp.branches.run()
    err = caught.value
    assert err.step == "boom" and "bad value 3" in str(err)
    assert "ValueError: bad value 3" in err.traceback_text
    assert "Traceback" in err.traceback_text
    ran = calls.take()
    assert "boom" in ran and ran.count("total") == 1  # the healthy branch's total ran
    meta = Workspace.open().metadata
    run = meta.get_run(err.run_id)
    assert run.status == "failed" and "boom" in (run.error or "")
    status = {x.step: x.status for x in meta.list_executions(run.id)}
    assert status == {
        "number": "succeeded",
        "number_2": "succeeded",
        "number_3": "succeeded",
        "total": "succeeded",
        "boom": "failed",
        "total_2": "skipped",
    }


def test_resume_reruns_only_what_did_not_succeed(
    home: Path, calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken"
    broken.write_text("1")
    monkeypatch.setenv("BOOM_FILE", str(broken))
    with pytest.raises(StepError) as caught:
        sp.branches.run(fail=False)
    calls.take()
    run_id = caught.value.run_id
    broken.unlink()  # the cause is fixed
    result = resume_run(run_id[:8])
    assert result.status == "succeeded" and result.run_id == run_id
    assert sorted(calls.take()) == ["boom", "total"]
    meta = Workspace.open().metadata
    assert meta.get_run(run_id).status == "succeeded"
    attempts = [(x.status, x.attempt) for x in meta.list_executions(run_id) if x.step == "boom"]
    assert attempts == [("failed", 1), ("succeeded", 2)]
    assert result.load("total_2") == 4


def test_unsupported_return_type_names_type_and_fix(home: Path) -> None:
    with pytest.raises(UnsupportedTypeError) as caught:
        sp.unsupported.run()
    message = str(caught.value)
    assert "Opaque" in message and "register_materializer" in message
    stores = Workspace.open()
    run = stores.metadata.list_runs()[0]
    assert run.status == "failed"
    assert stores.metadata.list_artifacts() == []


def test_cycle_is_rejected_before_anything_runs(home: Path) -> None:
    with pytest.raises(PipelineDefinitionError, match="cycle"):
        sp.cyclic.run()
    assert not (home / "metadata.db").exists() or Workspace.open().metadata.list_runs() == []


def test_unknown_parameter_names_it_and_lists_known(home: Path) -> None:
    with pytest.raises(ParameterError) as caught:
        sp.regression.run(depth=3)
    assert "'depth'" in str(caught.value) and "degree" in str(caught.value)


def test_missing_input_file_fails_before_the_run(home: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingInputError) as caught:
        sp.regression.run(path=tmp_path / "nope.csv")
    assert "nope.csv" in str(caught.value) and "'path'" in str(caught.value)


def test_tracking_calls_are_recorded(home: Path, csv_path: Path) -> None:
    result = sp.regression.run(path=csv_path, degree=2)
    meta = Workspace.open().metadata
    metrics = meta.get_metrics(result.run_id)
    mse = [m for m in metrics if m.key == "mse"]
    assert [m.step for m in mse] == [0, 1, 2]
    assert any(m.key == "train_rows" and m.value == 150 for m in metrics)
    assert any(p.key == "degree" and p.value == "2" for p in meta.get_params(result.run_id))
    assert any(t.key == "kind" and t.value == "polyfit" for t in meta.get_tags(result.run_id))


def test_step_logs_are_captured(home: Path, csv_path: Path) -> None:
    result = sp.regression.run(path=csv_path)
    stores = Workspace.open()
    load_exec = stores.metadata.list_executions(result.run_id)[0]
    log = stores.artifacts.read_object(load_exec.log_uri).decode()
    assert f"loading {csv_path}" in log


def test_steps_are_plain_functions_outside_pipelines() -> None:
    assert sp.total(2, 3) == 5


def test_a_failure_skips_every_step_downstream(home: Path, calls, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(StepError, match="step 'load'"):
        sp.regression.run(path=empty, executor="process")
    meta = Workspace.open().metadata
    run = meta.list_runs()[0]
    status = {x.step: x.status for x in meta.list_executions(run.id)}
    assert status == {"load": "failed", "split": "skipped", "fit": "skipped", "score": "skipped"}
