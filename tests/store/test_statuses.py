"""Statuses: every status a run, an execution, a firing and an alert delivery is stored
with is a member of its enum, and the stored words are the ones they always were."""

from __future__ import annotations

import socket
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import pytest
import yaml

from ctloop.config import Settings
from ctloop.errors import StepError
from ctloop.monitor import MonitorReport, deliver_pending
from ctloop.monitor._alerts import raise_alerts
from ctloop.pipeline import pipeline, step
from ctloop.pipeline._runner import RunResult
from ctloop.pipeline.tracking import current_execution, current_workspace
from ctloop.store import records
from ctloop.store._triggers import FiringClaim, SqlTriggerStore
from ctloop.store.records import ExecutionRecord, RunRecord, new_id, utcnow
from ctloop.store.statuses import DeliveryStatus, ExecutionStatus, FiringStatus, RunStatus
from ctloop.store.workspace import Workspace

# written out by hand: these words are in databases and JSON already, so renaming a
# member's value is a breaking change that this list catches
STORED_WORDS: dict[type[StrEnum], list[str]] = {
    RunStatus: ["running", "succeeded", "failed"],
    ExecutionStatus: ["pending", "running", "succeeded", "failed", "cached", "skipped"],
    FiringStatus: ["claimed", "running", "succeeded", "failed", "skipped", "lost"],
    DeliveryStatus: ["pending", "sent", "failed"],
}


@step
def constant(value: int) -> int:
    return value


@step
def observe(value: int) -> dict:
    """The run's and this execution's statuses as the store has them mid-run."""
    workspace, ids = current_workspace(), current_execution()
    assert workspace is not None and ids is not None
    run_id, execution_id = ids
    return {
        "run": workspace.metadata.get_run(run_id).status,
        "execution": workspace.metadata.get_execution(execution_id).status,
        "value": value,
    }


@step
def explode(value: int, fail: bool = True) -> int:
    if fail:
        raise ValueError(f"bad value {value}")
    return value


@step
def after(value: int) -> int:
    return value


@pipeline
def lifecycle(fail: bool = True):
    """One step is observed while running, one fails, one is skipped behind it."""
    value = constant(1)
    observe(value)
    after(explode(value, fail=fail))


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CTLOOP_STORE_URL", raising=False)
    monkeypatch.delenv("CTLOOP_EXECUTOR", raising=False)
    monkeypatch.chdir(tmp_path)
    return Workspace.open(f"sqlite:///{tmp_path / 'metadata.db'}", artifacts=str(tmp_path / "a"))


def _run_failing(workspace: Workspace) -> RunResult:
    with pytest.raises(StepError) as caught:
        lifecycle.run(workspace=workspace)
    result = caught.value.result  # type: ignore[attr-defined]
    assert isinstance(result, RunResult)
    return result


@pytest.mark.parametrize("enum", list(STORED_WORDS), ids=lambda e: e.__name__)
def test_the_stored_words_are_unchanged(enum: type[StrEnum]) -> None:
    assert [member.value for member in enum] == STORED_WORDS[enum]
    assert all(enum(word) == word and isinstance(enum(word), str) for word in STORED_WORDS[enum])


def test_the_groupings() -> None:
    assert RunStatus.finished() == {"succeeded", "failed"}
    assert ExecutionStatus.done() == {"succeeded", "cached"}
    assert ExecutionStatus.unfinished() == {"pending", "running"}
    assert ExecutionStatus.without_outputs() == {"failed", "skipped"}
    assert FiringStatus.active() == {"claimed", "running"}
    assert FiringStatus.unsuccessful() == {"failed", "lost"}


def test_the_records_module_still_names_the_run_and_execution_statuses() -> None:
    assert records.RunStatus is RunStatus and records.ExecutionStatus is ExecutionStatus


def test_a_real_run_stores_only_members(workspace: Workspace, tmp_path: Path) -> None:
    first_result = _run_failing(workspace)
    first = first_result.run_id
    second = _run_failing(workspace).run_id  # the steps that succeeded before are cached now
    meta = workspace.metadata

    steps = {r: {x.step: x.status for x in meta.list_executions(r)} for r in (first, second)}
    assert steps[first] == {
        "constant": "succeeded",
        "observe": "succeeded",
        "explode": "failed",
        "after": "skipped",
    }
    assert steps[second] == {
        "constant": "cached",
        "observe": "cached",
        "explode": "failed",
        "after": "skipped",
    }
    observed = first_result.load("observe")  # what the store said while observe ran
    assert observed == {"run": "running", "execution": "running", "value": 1}
    executions = {s for r in steps.values() for s in r.values()} | {observed["execution"]}
    assert executions <= set(ExecutionStatus)
    assert executions == set(ExecutionStatus) - {ExecutionStatus.PENDING}
    third = lifecycle.run(workspace=workspace, fail=False).run_id
    runs = {meta.get_run(r).status for r in (first, second, third)} | {observed["run"]}
    assert runs == set(RunStatus)
    # the database holds the plain words
    with sqlite3.connect(tmp_path / "metadata.db") as db:
        stored = {row[0] for row in db.execute("SELECT status FROM runs")}
        stored |= {row[0] for row in db.execute("SELECT status FROM executions")}
    assert stored == {"failed", "succeeded", "cached", "skipped"}


@pytest.mark.parametrize("status", list(ExecutionStatus))
def test_every_execution_status_can_be_stored_and_read_back(
    workspace: Workspace, status: ExecutionStatus
) -> None:
    meta = workspace.metadata
    run = RunRecord(
        new_id(), "p", "v", "ref", {}, "manual", "u", "h", 1, RunStatus.RUNNING, utcnow()
    )
    meta.create_run(run)
    execution = ExecutionRecord(new_id(), run.id, "s", "f", "c", "k", status)
    meta.create_execution(execution)
    stored = meta.get_execution(execution.id).status
    assert stored == status and ExecutionStatus(stored) is status


@pytest.mark.parametrize("status", list(RunStatus))
def test_every_run_status_can_be_stored_and_read_back(
    workspace: Workspace, status: RunStatus
) -> None:
    meta = workspace.metadata
    run = RunRecord(new_id(), "p", "v", "ref", {}, "manual", "u", "h", 1, status, utcnow())
    meta.create_run(run)
    assert RunStatus(meta.get_run(run.id).status) is status


def test_an_unknown_status_is_refused_with_the_known_ones(workspace: Workspace) -> None:
    run = RunRecord(new_id(), "p", "v", "ref", {}, "manual", "u", "h", 1, "done", utcnow())
    with pytest.raises(ValueError, match="run status 'done' is unknown; use one of running"):
        workspace.metadata.create_run(run)
    workspace.metadata.create_run(replace(run, status=RunStatus.RUNNING))
    with pytest.raises(ValueError, match="execution status 'ok' is unknown"):
        workspace.metadata.create_execution(
            ExecutionRecord(new_id(), run.id, "s", "f", "c", "k", "ok")
        )


def test_a_firing_through_its_lifecycle_stores_only_members(tmp_path: Path) -> None:
    store = SqlTriggerStore(f"sqlite:///{tmp_path / 'metadata.db'}")

    def claim(key: str, status: str = FiringStatus.CLAIMED) -> int:
        firing = store.claim(FiringClaim("p/t", "p", "schedule", key, key, status=status)).firing
        assert firing is not None
        return firing.id

    seen = []
    for key, final in [("a", "succeeded"), ("b", "failed"), ("c", "lost")]:
        firing_id = claim(key)
        seen.append(store.get_firing(firing_id).status)
        assert store.update_firing(
            firing_id, only_if=(FiringStatus.CLAIMED,), status=FiringStatus.RUNNING
        )
        seen.append(store.get_firing(firing_id).status)
        assert store.finish_firing(firing_id, FiringStatus(final))
        assert not store.finish_firing(firing_id, FiringStatus.FAILED)  # final stays final
        seen.append(store.get_firing(firing_id).status)
    seen.append(store.get_firing(claim("d", FiringStatus.SKIPPED)).status)

    assert seen == [
        *("claimed", "running", "succeeded"),
        *("claimed", "running", "failed"),
        *("claimed", "running", "lost"),
        "skipped",
    ]
    assert set(seen) == set(FiringStatus)
    assert [f.status for f in store.list_firings(statuses=FiringStatus.active())] == []
    with pytest.raises(ValueError, match="trigger firing status 'done' is unknown"):
        store.update_firing(1, status="done")


def test_an_alert_delivery_stores_only_members(workspace: Workspace, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on: the webhook is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sinks = [{"type": "log"}, {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook"}]
    alerts = {"max_attempts": 2, "backoff_s": 1, "sinks": sinks}
    (tmp_path / "ctloop.yaml").write_text(yaml.safe_dump({"alerts": alerts}))
    settings = Settings.load(tmp_path)
    column = {"column": "distance", "drifted": True, "test": "psi", "statistic": 0.5}
    columns = [{**column, "p_value": None, "threshold": 0.2}]
    window = {"spec": "1d", "rows": 500}
    report = MonitorReport("flights", 1, "a1", "drift", window, skew={"columns": columns})

    (alert,) = raise_alerts(workspace, report, None, settings=settings)
    later = datetime.now(UTC) + timedelta(hours=1)
    (retried,) = deliver_pending(workspace, settings=settings, now=later)

    first = {sink: entry["status"] for sink, entry in alert.delivery.items()}
    final = {sink: entry["status"] for sink, entry in retried.delivery.items()}
    assert first == {"log": "sent", "webhook": "pending"}
    assert final == {"log": "sent", "webhook": "failed"}
    assert set(first.values()) | set(final.values()) == set(DeliveryStatus)
