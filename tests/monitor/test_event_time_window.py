"""A replay of history windows by event time: rows logged today about last month fall
in last month's window with ``monitoring: window_on: event_time``, not in today's."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pytest

from ctloop.errors import MonitorError
from ctloop.monitor import MonitorSettings, run_monitor
from ctloop.serve._feedback import FeedbackLogger
from ctloop.serve._prediction_log import PredictionLogger
from tests.monitor.conftest import END, FEATURES, Project, make_rows

WEEK = timedelta(days=7)


def replay(project: Project, rows: int, seed: int, start: float, *, shift: float = 0.0) -> None:
    """Log ``rows`` predictions now, about a week of events from ``start``, and labels."""
    frame = make_rows(rows, seed, shift=shift)
    ids = [f"e{seed}-{i}" for i in range(rows)]
    events = tuple(np.linspace(start, start + WEEK.total_seconds() - 1, rows).tolist())
    predictions = project.model.predict(frame[FEATURES])
    with PredictionLogger(project.workspace, "flights", flush_rows=10**6) as logger:
        logger.log(1, "prod", ids, frame[FEATURES], predictions, time.time(), event_times=events)
    with FeedbackLogger(project.workspace, "flights", flush_rows=10**6) as feedback:
        feedback.log(ids, frame["label"].tolist(), time.time(), list(events))


def test_windows_on_event_time_judge_the_week_the_rows_are_about(project: Project) -> None:
    replay(project, 400, 20, (END - 2 * WEEK).timestamp())
    replay(project, 400, 21, (END - WEEK).timestamp(), shift=3.0)
    on_events = dataclasses.replace(project.settings, monitoring={"window_on": "event_time"})

    replayed = run_monitor(project.workspace, "flights", "1w", end=END, settings=on_events)
    assert replayed.report.window["rows"] == 400
    assert replayed.verdict in ("drift", "degraded"), replayed.report.reasons
    earlier = run_monitor(project.workspace, "flights", "1w", end=END - WEEK, settings=on_events)
    assert earlier.report.window["rows"] == 400 and earlier.verdict == "ok"
    # by arrival, the whole history came in today: last month's windows are empty
    arrival = run_monitor(project.workspace, "flights", "1w", end=END, settings=project.settings)
    assert arrival.verdict == "no-data" and arrival.report.window["rows"] == 0


def test_an_unknown_window_clock_is_refused_by_name() -> None:
    with pytest.raises(MonitorError, match="window_on' is 'arrival'; use timestamp"):
        MonitorSettings.from_mapping({"window_on": "arrival"})


def test_a_monitor_trigger_replaying_history_judges_the_window_ending_at_its_clock(
    project: Project,
) -> None:
    from ctloop.triggers import TriggerSpec
    from ctloop.triggers._sources import monitor_verdicts

    replay(project, 400, 20, (END - 2 * WEEK).timestamp())
    replay(project, 400, 21, (END - WEEK).timestamp(), shift=3.0)
    on_events = dataclasses.replace(project.settings, monitoring={"window_on": "event_time"})
    spec = TriggerSpec("decay", "retrain", "monitor", {"model": "flights", "window": "1w"})

    def verdict(end: Callable[[], datetime] | None) -> str:
        return monitor_verdicts(project.workspace, on_events, end=end)(spec).verdict

    assert verdict(lambda: END) in ("drift", "degraded")
    assert verdict(lambda: END - WEEK) == "ok"
    assert verdict(None) == "no-data"  # the wall clock: nothing was about this week
