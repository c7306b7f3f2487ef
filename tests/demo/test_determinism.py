"""Two runs of the demo take the same decisions: the logs read back in one order however
concurrent requests were written, the scheduler runs on the replay's clock (not on the
seconds a week takes to send), the retraining pipeline is seeded and releases the refit
the gate let through, and the weeks a cooldown holds back are still judged."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ctloop.artifacts._logs import LogWriter, feedback_frame, read_feedback
from ctloop.config import Settings
from ctloop.demo._loop import (
    DemoConfig,
    ReplayClock,
    _fresh_workdir,
    _judge_cooling_down,
    _scheduler,
    week_start,
)
from ctloop.store.workspace import Workspace
from ctloop.triggers import TriggerEvent, Verdict

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flights"
DECAY = "flights-retrain/decay"


def _feedback_read_back(order: list[int]) -> list[str]:
    """Labels of six requests of one event time, logged in ``order`` in two batches."""
    workspace = Workspace.in_memory()
    writer = LogWriter(workspace)
    moment = datetime(2013, 3, 5, 6, 0, tzinfo=UTC).timestamp()
    ids = [f"w9-{i}" for i in order]
    for batch in (ids[:3], ids[3:]):
        frame = feedback_frame(batch, [1] * len(batch), [moment] * len(batch))
        writer.add_feedback("flights", frame)
    writer.cleanup()
    return list(read_feedback(workspace, "flights")["request_id"])


def test_rows_of_one_time_read_back_in_one_order_whatever_order_they_were_logged() -> None:
    # the monitor's seeded bootstrap and attribution sample draw rows by position
    first = _feedback_read_back([5, 0, 3, 1, 4, 2])
    assert first == _feedback_read_back([2, 4, 1, 0, 3, 5]) == sorted(first)


@pytest.fixture
def demo_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in [k for k in os.environ if k.startswith("CTLOOP_")]:
        monkeypatch.delenv(key)
    root = _fresh_workdir(DemoConfig(example=EXAMPLE, workdir=tmp_path / "work"))
    monkeypatch.chdir(root)
    settings = Settings.load(root)
    # the retraining pipeline only: its monitor trigger is what is timed
    retrain = {"flights-retrain": settings.pipelines["flights-retrain"]}
    return dataclasses.replace(settings, pipelines=retrain)


def test_the_scheduler_checks_the_policy_once_a_replayed_week(demo_settings: Settings) -> None:
    workspace = Workspace.in_memory()
    clock = ReplayClock()
    asked: list[datetime] = []

    def verdicts(spec: Any) -> Verdict:
        asked.append(clock())
        return Verdict("ok", None, None)

    loop = _scheduler(workspace, demo_settings, clock, verdicts=verdicts)
    clock.week = 10
    loop.scheduler.evaluate()
    loop.scheduler.evaluate()  # seconds later, the same replayed week: not due again
    clock.week = 11
    loop.scheduler.evaluate()
    assert asked == [week_start(10), week_start(11)]
    state = workspace.triggers.get_state(DECAY)
    assert state is not None and state.cursor["checked_at"] == week_start(11).isoformat()


def test_a_week_held_back_by_the_cooldown_is_still_judged(demo_settings: Settings) -> None:
    judged: list[str] = []

    def verdicts(spec: Any) -> Verdict:
        judged.append(spec.qualified_name)
        return Verdict("drift", None, None)

    loop = _scheduler(Workspace.in_memory(), demo_settings, ReplayClock(), verdicts=verdicts)
    events = [
        TriggerEvent(DECAY, "cooldown", "until 2013-04-02T00:00:00+00:00"),
        TriggerEvent("flights-retrain/manual", "idle"),
    ]
    _judge_cooling_down(loop, events)
    assert judged == [DECAY]
    (decay, _manual) = loop.scheduler.specs[0].triggers
    assert decay.cooldown is not None and decay.cooldown.days == 28
    assert decay.options["every"] == "1w" and decay.source["on"] == ["degraded", "drift"]


def _example(name: str) -> ModuleType:
    sys.path.insert(0, str(EXAMPLE))
    try:
        spec = importlib.util.spec_from_file_location(f"demo_{name}", EXAMPLE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLE))


def test_the_retraining_pipeline_gates_the_candidate_and_releases_the_refit() -> None:
    continuous = _example("continuous")
    graph = continuous.retrain.build({"weeks": 12})
    gate = graph.invocations["gate"]
    # the gate judges the candidate's evaluation and blesses (so registers) the refit
    assert gate.inputs["evaluation"].invocation == "evaluate"
    assert gate.inputs["model"].invocation == "fit_flights_2"
    assert graph.invocations["evaluate"].inputs["model"].invocation == "fit_flights"
    plain = continuous.retrain.build({"weeks": 12, "refit_after_gate": False})
    assert plain.invocations["gate"].inputs["model"].invocation == "fit_flights"


def test_the_flights_model_is_the_same_every_fit() -> None:
    import numpy as np
    from threadpoolctl import threadpool_limits

    flights = _example("pipeline")
    prepare = _example("prepare_data")  # the table `make demo` builds, from the source rows
    source, weather = prepare.read_source()
    rows = prepare.build_table(source[source["month"] == 1].head(4000), weather)
    rows = rows.dropna(subset=["arr_delay"]).reset_index(drop=True)
    train, test = rows.iloc[:2000], rows.iloc[2000:2500]
    X, _ = flights.features(test)
    with threadpool_limits(1):  # as the demo fits (OMP_NUM_THREADS=1)
        first = flights.fit_model(train).predict_proba(X)[:, 1]
        again = flights.fit_model(train).predict_proba(X)[:, 1]
    assert np.array_equal(first, again)
