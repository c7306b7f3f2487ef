"""``ctloop scheduler`` and ``ctloop triggers`` as real processes: restarts, SIGKILL,
SIGTERM and two schedulers on one store."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from ctloop.config import Settings
from ctloop.store._triggers import TriggerStore
from ctloop.store.records import utcnow
from ctloop.store.workspace import Workspace
from tests.triggers.conftest import PIPELINES, Project, eventually


def _configure(project: Project) -> None:
    (project.root / "in").mkdir()
    project.configure(
        {
            "gated": {
                "pipeline": f"{PIPELINES}:gated",
                "parameters": {"release": str(project.root / "release")},
                "triggers": [{"name": "new-data", "new_files": str(project.root / "in" / "*")}],
            },
            "ingest": {
                "pipeline": f"{PIPELINES}:ingest",
                "triggers": [{"name": "manual", "manual": True}],
            },
        }
    )


def _workspace() -> Workspace:
    return Workspace.from_settings(Settings.load())


def _store() -> TriggerStore:
    return _workspace().triggers


def _evaluated_after(moment: object) -> bool:
    state = _store().get_state("gated/new-data")
    return (
        state is not None and state.last_checked_at is not None and state.last_checked_at > moment
    )


def _start(project: Project) -> subprocess.Popen[str]:
    proc = project.popen("scheduler", "--interval", "0.2")
    started = utcnow()
    eventually(lambda: _evaluated_after(started), "the scheduler's first evaluation")
    return proc


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out


def test_a_scheduler_killed_mid_run_and_restarted_neither_loses_nor_repeats(
    project: Project,
) -> None:
    _configure(project)
    scheduler = _start(project)
    (project.root / "in" / "a.csv").write_text("x\n")
    eventually(lambda: project.calls, "the triggered run to start")
    scheduler.kill()  # SIGKILL: no chance to clean up
    scheduler.communicate()
    restarted = _start(project)
    (project.root / "release").write_text("go")
    done = eventually(
        lambda: [f for f in _store().list_firings() if f.status == "succeeded"], "the run to end"
    )
    restarted_at = utcnow()
    eventually(lambda: _evaluated_after(restarted_at), "another evaluation")
    out = _stop(restarted)
    assert "scheduler stopped" in out
    assert [f.status for f in _store().list_firings()] == ["succeeded"]
    runs = _workspace().metadata.list_runs()
    assert [r.id for r in runs] == [done[0].run_id] and runs[0].trigger == "new-data"


def test_a_firing_whose_scheduler_and_run_both_died_is_retried_once(project: Project) -> None:
    _configure(project)
    scheduler = _start(project)
    (project.root / "in" / "a.csv").write_text("x\n")
    eventually(lambda: project.calls, "the triggered run to start")
    scheduler.kill()
    scheduler.communicate()
    (firing,) = _store().list_firings()
    os.kill(firing.details["pid"], signal.SIGKILL)
    restarted = _start(project)
    (project.root / "release").write_text("go")
    eventually(
        lambda: [f for f in _store().list_firings() if f.status == "succeeded"], "the retry to end"
    )
    _stop(restarted)
    retry, lost = _store().list_firings()
    assert (lost.status, retry.status) == ("lost", "succeeded")
    assert retry.fire_key == lost.fire_key + "#retry" and retry.run_id == lost.run_id


def test_two_schedulers_at_once_fire_the_new_set_once(project: Project) -> None:
    _configure(project)
    project.cli("scheduler", "--once")  # baseline
    (project.root / "release").write_text("go")
    for name in ("a.csv", "b.csv"):
        (project.root / "in" / name).write_text("x\n")
    procs = [project.popen("scheduler", "--once", "--json") for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    events = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    assert [e["outcome"] for e in events].count("fired") == 1
    (firing,) = _store().list_firings()
    assert firing.status == "succeeded"


def test_triggers_list_fire_and_history(project: Project) -> None:
    _configure(project)
    listed = json.loads(project.cli("triggers", "list", "--json").stdout)
    assert [(r["trigger"], r["kind"]) for r in listed] == [
        ("gated/new-data", "new_files"),
        ("ingest/manual", "manual"),
    ]
    (project.root / "data.csv").write_text("x\n1\n")
    fired = json.loads(
        project.cli(
            "triggers", "fire", "ingest", "-p", f'paths=["{project.root / "data.csv"}"]', "--json"
        ).stdout
    )
    assert fired["status"] == "succeeded" and fired["trigger"] == "ingest/manual"
    history = json.loads(project.cli("triggers", "history", "--json").stdout)
    assert [h["id"] for h in history] == [fired["id"]] and history[0]["run_id"] == fired["run_id"]
    human = project.cli("triggers", "history").stdout
    assert "ingest/manual" in human and "succeeded" in human
    missing = project.cli("triggers", "fire", "nope", check=False)
    assert missing.returncode != 0 and "'nope' is not declared" in missing.stderr


def test_sigterm_stops_the_scheduler_and_leaves_the_run_to_finish(project: Project) -> None:
    _configure(project)
    scheduler = _start(project)
    (project.root / "in" / "a.csv").write_text("x\n")
    eventually(lambda: project.calls, "the triggered run to start")
    _stop(scheduler)
    (firing,) = _store().list_firings()
    assert firing.status == "running" and firing.details["detached"] is True
    (project.root / "release").write_text("go")
    eventually(lambda: _store().get_firing(firing.id).status == "succeeded", "the run to end")
