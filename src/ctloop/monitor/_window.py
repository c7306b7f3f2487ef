"""Monitoring windows: ``1h``, ``30m``, ``1d``, ``1w`` of time, or ``N`` requests, and
reading the logged predictions (joined with their labels) that fall in one.

>>> from datetime import UTC, datetime
>>> w = window_bounds("1d", datetime(2026, 1, 2, tzinfo=UTC))
>>> w["start"], w["previous_start"]
('2026-01-01T00:00:00+00:00', '2025-12-31T00:00:00+00:00')
>>> window_bounds("500", datetime(2026, 1, 2, tzinfo=UTC))["requests"]
500
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.durations import is_duration, parse_duration
from ctloop.errors import MonitorError

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.store.workspace import Workspace

_REQUESTS = re.compile(r"^(\d+)\s*(req|requests)?$")


def window_bounds(spec: str, end: datetime | str | None = None) -> dict[str, Any]:
    """The window ``spec`` ending at ``end`` (default now) and the window before it.

    Time windows give ISO ``start``, ``end`` and ``previous_start``; request windows give
    ``requests`` (the last N predictions before ``end``; the previous window is the N
    before those).
    """
    text = spec.strip().lower()
    requests = _REQUESTS.match(text)
    length = parse_duration(text, "") if is_duration(text) else None
    if (requests is None or int(requests.group(1)) == 0) and not length:
        raise MonitorError(
            f"window {spec!r} is not understood; use a duration such as 30m, 1h, 1d, 1w "
            "or a number of requests such as 1000"
        )
    stop = parse_time(end) if end is not None else datetime.now(UTC)
    if length:
        return {
            "spec": spec,
            "start": (stop - length).isoformat(),
            "end": stop.isoformat(),
            "previous_start": (stop - 2 * length).isoformat(),
            "requests": None,
        }
    return {
        "spec": spec,
        "start": None,
        "end": stop.isoformat(),
        "previous_start": None,
        "requests": int(requests.group(1)) if requests else None,
    }


def parse_time(value: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime or an ISO 8601 string (naive means UTC).

    >>> parse_time("2026-01-02T03:00").isoformat()
    '2026-01-02T03:00:00+00:00'
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise MonitorError(
                f"time {value!r} is not ISO 8601; write it like 2026-01-02T03:00:00Z"
            ) from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def split_window(
    frame: pd.DataFrame, bounds: dict[str, Any], on: str = "timestamp"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of the window and of the window before it, by ``on`` (``timestamp``,
    when rows were logged, or ``event_time``, the time they are about; rows without an
    event time count by their timestamp)."""
    import pandas as pd

    if frame.empty:
        return frame, frame
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    frame = frame.assign(timestamp=stamps)
    if on == "event_time":
        events = frame["event_time"] if "event_time" in frame.columns else stamps
        frame = frame.assign(event_time=pd.to_datetime(events, utc=True).fillna(stamps))
    frame = frame.sort_values(on, kind="stable")
    end = pd.Timestamp(parse_time(bounds["end"]))
    frame = frame[frame[on] < end]
    if bounds["requests"] is not None:
        n = int(bounds["requests"])
        return frame.iloc[-n:], frame.iloc[-2 * n : -n] if len(frame) > n else frame.iloc[:0]
    start = pd.Timestamp(parse_time(bounds["start"]))
    before = pd.Timestamp(parse_time(bounds["previous_start"]))
    current = frame[frame[on] >= start]
    previous = frame[(frame[on] >= before) & (frame[on] < start)]
    return current, previous


def read_logged(workspace: Workspace, request: Mapping[str, Any]) -> pd.DataFrame:
    """Logged predictions of the request's model version from the earliest time either
    window needs to its end, with a ``label`` column where feedback arrived, read from
    ``workspace``'s prediction and feedback logs.

    ``request["data"]`` names a Parquet file of logged predictions to read instead of the
    prediction log (columns ``timestamp``, the features, ``prediction``, optional
    ``label`` and ``model_version``).
    """
    import pandas as pd

    bounds = request["bounds"]
    if request.get("data"):
        frame = pd.read_parquet(Path(request["data"]))
    else:
        frame = _from_prediction_log(workspace, request["model"], bounds, _clock(request))
    if "model_version" in frame.columns:
        version = frame["model_version"]
        frame = frame[version.isna() | (version.astype("Int64") == int(request["version"]))]
    return frame


def logged_batches(workspace: Workspace, request: Mapping[str, Any]) -> list[str]:
    """Artifact ids of the prediction-log batches the window read (for lineage)."""
    if request.get("data"):
        return []
    bounds = request["bounds"]
    start = parse_time(bounds["previous_start"]) if bounds["previous_start"] else None
    end = parse_time(bounds["end"])
    batches = workspace.logs.predictions(request["model"], start, end, on=_clock(request))
    return [b.artifact_id for b in batches]


def _clock(request: Mapping[str, Any]) -> str:
    """The time the request's windows are on: ``monitoring: window_on``."""
    return str((request.get("monitoring") or {}).get("window_on") or "timestamp")


def _from_prediction_log(
    workspace: Workspace, model: str, bounds: Mapping[str, Any], on: str = "timestamp"
) -> pd.DataFrame:
    from ctloop.artifacts._logs import join_feedback, read_feedback, read_predictions

    start = parse_time(bounds["previous_start"]) if bounds["previous_start"] else None
    frame = read_predictions(workspace, model, start=start, end=parse_time(bounds["end"]), on=on)
    if frame.empty:
        return frame
    # labels arrive after their predictions: read them up to now, not to the window's
    # end; on event time, a label logged at any time may belong to the window
    feedback = read_feedback(workspace, model, start=start if on == "timestamp" else None)
    if feedback.empty:
        return frame
    return join_feedback(frame, feedback, how="left")
