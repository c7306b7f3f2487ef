"""Event times of served requests: the time a prediction or a label is about, which a
replay of history sends and the monitor windows by (``monitoring: window_on:
event_time``).

A client gives it, most specific first, as a field ``event_time`` of each row (records,
columns, a CSV column or a V2 tensor), a request field (``event_time`` in the native and
MLflow bodies, ``parameters.event_time`` in V2), or the ``X-Event-Time`` header; each
an ISO 8601 time (naive means UTC) or seconds since the epoch. Rows without one get the
wall clock. A value that is neither is the client's 422 naming the field and the value.

>>> parse_event_time("2026-01-02T03:00:00Z", "event_time")
1767322800.0
>>> parse_event_time(1767322800, "X-Event-Time")
1767322800.0
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ctloop.errors import PredictionRequestError

if TYPE_CHECKING:
    from collections.abc import Collection

    from ctloop.serve._protocols import PredictionRequest

_Request = TypeVar("_Request", bound="PredictionRequest")

__all__ = [
    "EVENT_TIME_FIELD",
    "EVENT_TIME_HEADER",
    "feedback_event_times",
    "parse_event_time",
    "with_event_times",
]

EVENT_TIME_FIELD = "event_time"
EVENT_TIME_HEADER = "x-event-time"
# years 1900 to 2200: a number outside is no epoch time but a mistake (milliseconds)
_EPOCH_RANGE = (-2_208_988_800.0, 7_258_118_400.0)


def parse_event_time(value: Any, field: str) -> float:
    """``value`` (ISO 8601 text, or epoch seconds as a number or numeric text) as
    seconds since the epoch; a :class:`~ctloop.errors.PredictionRequestError` (422,
    ``field``) naming the value when it is neither."""
    if isinstance(value, bool):
        raise _bad(value, field)
    if isinstance(value, int | float):
        return _epoch(float(value), value, field)
    if isinstance(value, str):
        text = value.strip()
        try:
            return _epoch(float(text), value, field)
        except ValueError:
            pass
        try:
            stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _bad(value, field) from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()
    if hasattr(value, "timestamp") and hasattr(value, "tzinfo"):  # a pandas Timestamp (CSV)
        return float(value.timestamp() if value.tzinfo else value.tz_localize(UTC).timestamp())
    raise _bad(value, field)


def _epoch(seconds: float, value: Any, field: str) -> float:
    if not math.isfinite(seconds) or not _EPOCH_RANGE[0] <= seconds <= _EPOCH_RANGE[1]:
        raise PredictionRequestError(
            f"{field} is {value!r}, which is no time between the years 1900 and 2200 in "
            "seconds since the epoch; send seconds (not milliseconds) or an ISO 8601 time "
            "such as 2026-01-02T03:00:00Z",
            status=422,
            field=field,
        )
    return seconds


def _bad(value: Any, field: str) -> PredictionRequestError:
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:80] + "…"
    return PredictionRequestError(
        f"{field} is {shown}, which is neither an ISO 8601 time (2026-01-02T03:00:00Z) nor "
        "seconds since the epoch; send one of those",
        status=422,
        field=field,
    )


def with_event_times(request: _Request, header: str | None, inputs: Collection[str]) -> _Request:
    """``request`` with the event time of each of its rows (``None`` for rows that
    have none: the wall clock), taken from the rows, the request and ``header``; a row
    field ``event_time`` leaves the data unless the model takes it (``inputs``)."""
    default = None
    if header is not None:
        default = parse_event_time(header, "X-Event-Time")
    if request.event_time is not None:
        default = parse_event_time(request.event_time, EVENT_TIME_FIELD)
    data, per_row = _row_times(request.data, keep=EVENT_TIME_FIELD in inputs)
    if per_row is None:
        if default is None:
            return request
        return replace(request, event_times=(default,) * _rows(data))
    times = tuple(default if t is None else t for t in per_row)
    return replace(request, data=data, event_times=times)


def feedback_event_times(sent: list[Any], header: str | None) -> list[float | None] | None:
    """The event time of each label of a ``/feedback`` body: its item's ``event_time``
    (``sent``, ``None`` where an item has none), else ``header``; ``None`` when no
    label has one (the wall clock)."""
    default = parse_event_time(header, "X-Event-Time") if header is not None else None
    times = [default if value is None else _row_time(value, i) for i, value in enumerate(sent)]
    return None if all(t is None for t in times) else times


def _row_times(data: Any, *, keep: bool) -> tuple[Any, list[float | None] | None]:
    """``data`` without its ``event_time`` field (unless ``keep``) and each row's time."""
    field = EVENT_TIME_FIELD
    if isinstance(data, list):
        if not any(isinstance(r, dict) and field in r for r in data):
            return data, None
        times = [
            _row_time(r.get(field), i) if isinstance(r, dict) else None for i, r in enumerate(data)
        ]
        if not keep:
            data = [
                {k: v for k, v in r.items() if k != field} if isinstance(r, dict) else r
                for r in data
            ]
        return data, times
    if isinstance(data, dict) and field in data:
        values = data[field]
        if not isinstance(values, list):
            values = [values]
        times = [_row_time(v, i) for i, v in enumerate(values)]
        return (data if keep else {k: v for k, v in data.items() if k != field}), times
    columns = getattr(data, "columns", None)
    if columns is not None and field in columns:  # a CSV frame
        times = [_row_time(v, i) for i, v in enumerate(data[field].tolist())]
        return (data if keep else data.drop(columns=[field])), times
    return data, None


def _row_time(value: Any, row: int) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return parse_event_time(value, EVENT_TIME_FIELD)
    except PredictionRequestError as exc:
        raise PredictionRequestError(
            f"row {row}: {exc}", status=exc.status, field=EVENT_TIME_FIELD
        ) from None


def _rows(data: Any) -> int:
    if isinstance(data, list):
        return len(data)
    if isinstance(data, dict):
        first: Any = next(iter(data.values()), [])
        return len(first) if isinstance(first, list) else 1
    return len(data)
