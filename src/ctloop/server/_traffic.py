"""Prediction volume and latency per monitoring window, read from the prediction log.

Every logged row carries its request's ``latency_ms``: how long the prediction server
took to answer the request, from routing to predictions. The rows of one request share
its log time and its latency, so a window's requests are its distinct (log time,
latency) pairs and its percentiles are over requests, not rows: a request of 1,000 rows
counts once. Rows logged before latencies were kept count in the volume and have no
latency; a window with none has ``latency_ms: null``.

A window holds the rows whose time (the window's clock: ``timestamp``, when they were
logged, or ``event_time``) is in ``[start, end)``, as the monitoring job reads them. The
three columns it needs are read from each stored batch once (batches never change) and
kept in memory, bounded by rows.

>>> import numpy as np
>>> latency_summary(np.array([1.0, 2.0, 3.0, 4.0]))
{'p50': 2.5, 'p90': 3.7, 'p99': 3.97, 'max': 4.0, 'mean': 2.5}
"""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ctloop.store._operations_records import LogBatchRecord
    from ctloop.store.workspace import Workspace

__all__ = ["latency_summary", "window_traffic"]

#: the percentiles of latency each window answers
PERCENTILES = (50, 90, 99)
#: the most logged rows whose times and latencies are kept in memory
_CACHE_ROWS = 2_000_000
_CLOCKS = ("timestamp", "event_time")


@dataclass(frozen=True)
class _Batch:
    """One batch's rows: log and event times (ns since the epoch) and latencies (ms)."""

    timestamp: np.ndarray
    event_time: np.ndarray
    latency: np.ndarray


_cache: OrderedDict[str, _Batch] = OrderedDict()
_cached_rows = 0
_cache_lock = threading.Lock()


def latency_summary(latencies: np.ndarray) -> dict[str, float] | None:
    """Percentiles, maximum and mean of ``latencies`` (ms), rounded to 0.01 ms; ``None``
    when there are none (missing values are left out)."""
    import numpy as np

    known = latencies[~np.isnan(latencies)]
    if known.size == 0:
        return None
    found = {f"p{p}": float(np.percentile(known, p)) for p in PERCENTILES}
    found |= {"max": float(known.max()), "mean": float(known.mean())}
    return {k: round(v, 2) for k, v in found.items()}


def window_traffic(
    workspace: Workspace, model: str, windows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any] | None]:
    """The volume and latency of each of ``windows`` (oldest first; each with ``start``
    or ``None`` for a window of N requests, ``end`` and its clock ``on``): ``predictions``
    (rows), ``requests`` and ``latency_ms`` (:func:`latency_summary` over requests);
    ``None`` for a window without an end."""
    spans = _spans(windows)
    found: list[dict[str, Any] | None] = [None for _ in windows]
    for clock in _CLOCKS:
        chosen = [i for i, span in enumerate(spans) if span is not None and span[2] == clock]
        if not chosen:
            continue
        chosen_spans = [span for span in spans if span is not None and span[2] == clock]
        starts = [span[0] for span in chosen_spans]
        low = None if any(s is None for s in starts) else min(s for s in starts if s)
        high = max(span[1] for span in chosen_spans)
        rows = _rows_of(workspace, model, low, high, clock)
        for i, span in zip(chosen, chosen_spans, strict=True):
            found[i] = _summarise(rows, span[0], span[1])
    return found


_Span = tuple[datetime | None, datetime, str]


def _spans(windows: Sequence[Mapping[str, Any]]) -> list[_Span | None]:
    """Each window's ``[start, end)`` and clock (``None`` for a window without an end);
    a window of N requests starts where the window before it ended (the first one is
    open at the start)."""
    spans: list[_Span | None] = []
    previous_end: datetime | None = None
    for window in windows:
        if not window.get("end"):
            spans.append(None)
            continue
        end = datetime.fromisoformat(str(window["end"]))
        start = window.get("start")
        begin = datetime.fromisoformat(str(start)) if start else previous_end
        clock = str(window.get("on") or "timestamp")
        spans.append((begin, end, clock if clock in _CLOCKS else "timestamp"))
        previous_end = end
    return spans


def _rows_of(
    workspace: Workspace, model: str, low: datetime | None, high: datetime, clock: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The logged rows of batches overlapping ``[low, high]`` on ``clock``, sorted by it:
    their times on that clock, their log times and their latencies."""
    import numpy as np

    batches = workspace.logs.predictions(model, low, high, on=clock)
    parts = _batches(workspace, batches)
    if not parts:
        empty = np.empty(0, dtype="int64")
        return empty, empty, np.empty(0, dtype="float64")
    times = np.concatenate([getattr(p, clock) for p in parts])
    stamps = np.concatenate([p.timestamp for p in parts])
    latency = np.concatenate([p.latency for p in parts])
    order = np.argsort(times, kind="stable")
    return times[order], stamps[order], latency[order]


def _summarise(
    rows: tuple[np.ndarray, np.ndarray, np.ndarray], start: datetime | None, end: datetime
) -> dict[str, Any]:
    import numpy as np

    times, stamps, latency = rows
    first = 0 if start is None else int(np.searchsorted(times, _ns(start), side="left"))
    last = int(np.searchsorted(times, _ns(end), side="left"))
    stamps, latency = stamps[first:last], latency[first:last]
    if stamps.size == 0:
        return {"predictions": 0, "requests": 0, "latency_ms": None}
    pairs = np.unique(np.column_stack([stamps, latency.view("int64")]), axis=0)
    per_request = pairs[:, 1].copy().view("float64")
    return {
        "predictions": int(stamps.size),
        "requests": len(pairs),
        "latency_ms": latency_summary(per_request),
    }


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000


def _batches(workspace: Workspace, batches: Sequence[LogBatchRecord]) -> list[_Batch]:
    """The rows of each batch, read once per batch and then kept."""
    found: dict[str, _Batch] = {}
    with _cache_lock:
        for batch in batches:
            cached = _cache.get(batch.artifact_id)
            if cached is not None:
                _cache.move_to_end(batch.artifact_id)
                found[batch.artifact_id] = cached
    missing = [b.artifact_id for b in batches if b.artifact_id not in found]
    if missing:
        records = workspace.metadata.list_artifacts(sorted(set(missing)))
        for record in records:
            found[record.id] = _read(workspace, record)
        _keep({record.id: found[record.id] for record in records})
    return [found[b.artifact_id] for b in batches if b.artifact_id in found]


def _keep(read: Mapping[str, _Batch]) -> None:
    global _cached_rows
    with _cache_lock:
        for artifact_id, batch in read.items():
            if artifact_id not in _cache:
                _cache[artifact_id] = batch
                _cached_rows += batch.timestamp.size
        while _cached_rows > _CACHE_ROWS and len(_cache) > 1:
            _, dropped = _cache.popitem(last=False)
            _cached_rows -= dropped.timestamp.size


def _read(workspace: Workspace, record: Any) -> _Batch:
    """The times and latencies of one stored batch (its Parquet files, three columns)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    cache = Path(tempfile.gettempdir()) / "ctloop-server-blobs"
    for entry in record.files:
        if not entry.path.endswith(".parquet"):
            continue
        path = workspace.artifacts.local_path(entry.digest, cache)
        names = set(pq.read_schema(path).names)
        wanted = [c for c in ("timestamp", "event_time", "latency_ms") if c in names]
        tables.append(pq.read_table(path, columns=wanted))
    if not tables:
        empty = np.empty(0, dtype="int64")
        return _Batch(empty, empty, np.empty(0, dtype="float64"))
    table = pa.concat_tables(tables, promote_options="default")
    stamps = _times(table.column("timestamp"))
    events = _times(table.column("event_time")) if "event_time" in table.column_names else stamps
    events = np.where(events == _NAT, stamps, events)
    if "latency_ms" in table.column_names:
        latency = table.column("latency_ms").to_numpy(zero_copy_only=False).astype("float64")
    else:
        latency = np.full(len(stamps), np.nan)
    return _Batch(stamps, events, latency)


_NAT = -(2**63)


def _times(column: Any) -> np.ndarray:
    """A timestamp column as ns since the epoch (missing values as ``_NAT``)."""
    import pyarrow as pa

    values = column.cast(pa.timestamp("ns", tz="UTC")).to_numpy(zero_copy_only=False)
    return values.astype("datetime64[ns]").view("int64")
