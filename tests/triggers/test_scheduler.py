"""The scheduler in-process, launching real runs in child processes."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ctloop.config import Settings
from ctloop.errors import TriggerBusyError
from ctloop.store.records import ArtifactRecord
from ctloop.store.workspace import Workspace
from ctloop.triggers import Scheduler, Verdict
from tests.triggers.conftest import PIPELINES, Project, eventually


def _new_files(project: Project, **extra: object) -> None:
    trigger = {"name": "new-data", "new_files": str(project.root / "in" / "*.csv")}
    project.configure(
        {
            "ingest": {
                "pipeline": f"{PIPELINES}:ingest",
                "parameters": {"label": "nightly"},
                "triggers": [{**trigger, "parameter": "paths", **extra}],
            }
        }
    )
    (project.root / "in").mkdir(exist_ok=True)


def _drop(project: Project, *names: str) -> None:
    for name in names:
        (project.root / "in" / name).write_text("x\n1\n2\n")


def _fired(events: list) -> list:
    return [e for e in events if e.outcome == "fired"]


def test_new_files_start_one_run_with_the_files_and_the_trigger(project: Project) -> None:
    _new_files(project)
    _drop(project, "old.csv")
    sched = project.scheduler()
    assert [e.outcome for e in sched.evaluate()] == ["baseline"]
    assert _fired(sched.evaluate()) == []  # a stable stretch: nothing fires
    _drop(project, "a.csv", "b.csv")
    (event,) = _fired(sched.evaluate())
    assert _fired(sched.evaluate()) == []  # the same new set does not fire twice
    sched.wait()
    firing = sched.store.get_firing(event.firing_id)
    assert firing.status == "succeeded" and firing.run_id is not None
    meta = sched.workspace.metadata
    run = meta.get_run(firing.run_id)
    assert run.trigger == "new-data" and run.status == "succeeded"
    new = [str(project.root / "in" / n) for n in ("a.csv", "b.csv")]
    assert run.parameters == {"paths": new, "label": "nightly"}
    tags = {t.key: t.value for t in meta.get_tags(run.id)}
    assert tags["ctloop.trigger"] == "ingest/new-data"
    assert tags["ctloop.trigger.firing"] == str(firing.id)


def test_two_schedulers_fire_each_occasion_once(project: Project) -> None:
    _new_files(project)
    first, second = project.scheduler(), project.scheduler()
    first.evaluate()
    _drop(project, "a.csv")
    fired = _fired(first.evaluate()) + _fired(second.evaluate())
    _drop(project, "b.csv")
    # the run for a.csv may still be going: new data waits for it (max_concurrent 1)
    while not (now := _fired(second.evaluate()) + _fired(first.evaluate())):
        first.wait(timeout_s=0.1)
    fired += now
    assert _fired(first.evaluate()) + _fired(second.evaluate()) == []
    first.wait()
    second.wait()
    assert len(fired) == 2
    firings = first.store.list_firings()
    assert sorted(f.details["parameters"]["paths"][0][-5:] for f in firings) == ["a.csv", "b.csv"]


def test_a_failing_pipeline_fails_its_firing_not_the_scheduler(project: Project) -> None:
    project.configure({"broken": {"pipeline": f"{PIPELINES}:broken"}})
    sched = project.scheduler()
    firing = sched.fire("broken")
    sched.wait()
    done = sched.store.get_firing(firing.id)
    assert done.status == "failed" and "the training data is broken" in done.reason
    assert sched.workspace.metadata.get_run(done.run_id).trigger == "manual"


def test_a_run_keeps_to_the_cores_the_scheduler_gives_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTLOOP_CORES", "2")
    project.configure({"cores": {"pipeline": f"{PIPELINES}:cores"}})
    sched = project.scheduler()
    firing = sched.fire("cores")
    sched.wait()
    assert sched.store.get_firing(firing.id).details["cores"] == 2
    assert project.calls == ["cores 2 2"]  # its fits' budget and its native pools' threads


def test_the_firing_log_holds_the_run_the_gate_rejected(project: Project) -> None:
    project.configure({"rejected": {"pipeline": f"{PIPELINES}:rejected"}})
    sched = project.scheduler()
    firing = sched.fire("rejected")
    sched.wait()
    assert sched.store.get_firing(firing.id).status == "failed"
    log = (sched.settings.home / "triggers" / f"firing-{firing.id}.log").read_text()
    assert "step judge_candidate started" in log
    assert "candidate auc 0.61, champion auc 0.70" in log  # the step's own output
    assert "step judge_candidate failed" in log and "failed 1 gate check(s)" in log
    assert f"run {sched.store.get_firing(firing.id).run_id} failed" in log


def _gated(project: Project, **extra: object) -> Path:
    release = project.root / "release"
    project.configure(
        {
            "gated": {
                "pipeline": f"{PIPELINES}:gated",
                "parameters": {"release": str(release)},
                "triggers": [{"name": "hourly", "schedule": "0 * * * *", **extra}],
            }
        }
    )
    return release


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_slot_due_while_the_last_run_is_active_is_skipped(project: Project) -> None:
    release = _gated(project, max_concurrent=1)
    clock = Clock(datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    sched = project.scheduler(clock=clock)
    sched.evaluate()  # baseline
    clock.now = clock.now.replace(hour=10, minute=1)
    (fired,) = _fired(sched.evaluate())
    eventually(lambda: project.calls, "the run to start")
    clock.now = clock.now.replace(hour=11, minute=1)
    outcomes = [e.outcome for e in sched.evaluate()]
    assert outcomes == ["skipped"]
    with pytest.raises(TriggerBusyError, match="max_concurrent"):
        sched.fire("gated/hourly")
    release.write_text("go")
    sched.wait()
    statuses = {f.fire_key[-14:]: f.status for f in sched.store.list_firings()}
    assert statuses == {"11:00:00+00:00": "skipped", "10:00:00+00:00": "succeeded"}
    assert sched.store.get_firing(fired.firing_id).status == "succeeded"


def test_a_run_that_dies_is_retried_once_and_resumed(project: Project) -> None:
    release = _gated(project)
    sched = project.scheduler()
    firing = sched.fire("gated/hourly")
    eventually(lambda: project.calls, "the run to start")
    os.kill(firing.details["pid"], signal.SIGKILL)
    events = eventually(lambda: [e for e in sched.settle() if e.outcome == "retried"], "a retry")
    lost = sched.store.get_firing(firing.id)
    assert lost.status == "lost" and "died" in lost.reason
    retry = sched.store.get_firing(events[0].firing_id)
    assert retry.details["resume_run_id"] == lost.run_id and retry.details["attempt"] == 2
    release.write_text("go")
    sched.wait()
    assert sched.store.get_firing(retry.id).status == "succeeded"
    run = sched.workspace.metadata.get_run(lost.run_id)
    assert run.status == "succeeded"  # the same run, resumed


def test_a_dead_run_is_only_reported_with_on_lost_report(project: Project) -> None:
    _gated(project, on_lost="report")
    sched = project.scheduler()
    firing = sched.fire("gated/hourly")
    eventually(lambda: project.calls, "the run to start")
    os.kill(firing.details["pid"], signal.SIGKILL)
    eventually(lambda: [e for e in sched.settle() if e.outcome == "lost"], "the loss")
    assert [f.status for f in sched.store.list_firings()] == ["lost"]


def test_drift_fires_once_links_the_report_and_cools_down(project: Project) -> None:
    project.configure(
        {
            "ingest": {
                "pipeline": f"{PIPELINES}:ingest",
                "parameters": {"paths": []},
                "triggers": [
                    {
                        "name": "drift",
                        "monitor": {"model": "flights", "on": ["drift", "degraded"]},
                        "cooldown": "6h",
                        "every": "1m",
                    }
                ],
            }
        }
    )
    report = _report_artifact()
    verdicts = iter([Verdict("ok", "m1"), Verdict("drift", "m2", report), Verdict("drift", "m3")])
    clock = Clock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    sched = project.scheduler(verdicts=lambda _: next(verdicts), clock=clock)
    assert _fired(sched.evaluate()) == []  # ok: a stable stretch retrains nothing
    clock.now += timedelta(minutes=5)
    (fired,) = _fired(sched.evaluate())
    clock.now += timedelta(hours=1)
    assert [e.outcome for e in sched.evaluate()] == ["cooldown"]
    sched.wait()
    firing = sched.store.get_firing(fired.firing_id)
    assert firing.cause_artifact_id == report and firing.status == "succeeded"
    meta = sched.workspace.metadata
    assert meta.get_run(firing.run_id).trigger == "drift"
    assert {t.key: t.value for t in meta.get_tags(firing.run_id)}["ctloop.trigger.cause"] == report


def _report_artifact() -> str:
    record = ArtifactRecord(
        id="report-0001",
        type="MonitorReport",
        materializer="ctloop.json",
        materializer_version="1",
        digest="0" * 64,
        uri="manifests/0",
        size=0,
        files=(),
    )
    Workspace.from_settings(Settings.load()).metadata.put_artifacts([record])
    return record.id


def test_stop_ends_run_forever(project: Project) -> None:
    _new_files(project)
    seen: list[str] = []
    sched: Scheduler

    def on_event(event: object) -> None:
        seen.append(getattr(event, "outcome", ""))
        sched.stop()

    sched = project.scheduler(on_event=on_event)
    sched.run_forever(interval_s=0.01)
    assert seen == ["baseline"] and sched.stopping


@pytest.mark.parametrize("catchup", [False, True])
def test_slots_missed_while_down_are_caught_up_only_when_asked(
    project: Project, catchup: bool
) -> None:
    trigger = {"name": "hourly", "schedule": "0 * * * *", "catchup": catchup}
    project.configure(
        {
            "ingest": {
                "pipeline": f"{PIPELINES}:ingest",
                "parameters": {"paths": []},
                "triggers": [trigger],
            }
        }
    )
    clock = Clock(datetime(2026, 3, 1, 3, 30, tzinfo=UTC))
    project.scheduler(clock=clock).evaluate()  # baseline, then down until 06:30
    clock.now = clock.now.replace(hour=6)
    restarted = project.scheduler(clock=clock)
    fired = _fired(restarted.evaluate())
    restarted.wait()
    fired += _fired(restarted.evaluate())
    restarted.wait()
    keys = [restarted.store.get_firing(e.firing_id).fire_key for e in fired]
    assert keys == (
        ["slot:2026-03-01T04:00:00+00:00", "slot:2026-03-01T05:00:00+00:00"] if catchup else []
    )
