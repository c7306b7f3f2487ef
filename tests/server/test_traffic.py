"""Volume and latency per window from the prediction log: rows in ``[start, end)`` by the
window's clock, requests counted once however many rows they have, percentiles over
requests, and rows logged without a latency counted but not timed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctloop.serve._prediction_log import PredictionLogger
from ctloop.server._traffic import window_traffic
from ctloop.store.workspace import Workspace

T0 = datetime(2026, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.open(f"sqlite:///{tmp_path / 'm.db'}", artifacts=str(tmp_path / "art"))


def log(
    logger: PredictionLogger, at: datetime, rows: int, latency: float | None, **kw: Any
) -> None:
    ids = [f"{at.timestamp()}-{i}" for i in range(rows)]
    frame = pd.DataFrame({"x": np.arange(rows, dtype=float)})
    logger.log(1, "prod", ids, frame, np.zeros(rows), at.timestamp(), latency_ms=latency, **kw)


def window(
    start: datetime | None, end: datetime | None, on: str = "timestamp"
) -> dict[str, object]:
    return {
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "on": on,
    }


def test_each_window_counts_its_rows_and_requests_and_times_its_requests(
    workspace: Workspace,
) -> None:
    with PredictionLogger(workspace, "m", flush_seconds=3600) as logger:
        log(logger, T0 + 0.1 * HOUR, 100, 50.0)  # one request of 100 rows
        for k in range(9):
            log(logger, T0 + (0.2 + 0.05 * k) * HOUR, 1, float(k + 1))
        log(logger, T0 + 1.5 * HOUR, 3, None)  # logged without a latency
        log(logger, T0 + 2 * HOUR, 1, 7.0)  # on the second window's end: the third's
    first, second, third, unended = window_traffic(
        workspace,
        "m",
        [
            window(T0, T0 + HOUR),
            window(T0 + HOUR, T0 + 2 * HOUR),
            window(None, T0 + 3 * HOUR),
            window(None, None),
        ],
    )
    assert first is not None and (first["predictions"], first["requests"]) == (109, 10)
    latencies = np.array([50.0, *range(1, 10)])  # per request, not per row
    assert first["latency_ms"]["p50"] == round(float(np.percentile(latencies, 50)), 2)
    assert first["latency_ms"]["max"] == 50.0 and first["latency_ms"]["mean"] == 9.5
    assert second == {"predictions": 3, "requests": 1, "latency_ms": None}
    # a window of N requests starts where the one before it ended
    assert third is not None and third["predictions"] == 1 and third["latency_ms"]["p99"] == 7.0
    assert unended is None


def test_windows_on_event_time_count_rows_by_the_time_they_are_about(
    workspace: Workspace,
) -> None:
    with PredictionLogger(workspace, "m", flush_seconds=3600) as logger:
        events = ((T0 - 24 * HOUR).timestamp(),) * 2
        log(logger, T0, 2, 4.0, event_times=events)
    (yesterday,) = window_traffic(
        workspace, "m", [window(T0 - 25 * HOUR, T0 - 23 * HOUR, "event_time")]
    )
    (now,) = window_traffic(workspace, "m", [window(T0 - HOUR, T0 + HOUR, "timestamp")])
    assert (
        yesterday
        == now
        == {
            "predictions": 2,
            "requests": 1,
            "latency_ms": {"p50": 4.0, "p90": 4.0, "p99": 4.0, "max": 4.0, "mean": 4.0},
        }
    )
    assert window_traffic(workspace, "other", [window(T0 - HOUR, T0 + HOUR)]) == [
        {"predictions": 0, "requests": 0, "latency_ms": None}
    ]
