"""Real HTTP traffic for the demo: one request per flight, labels sent back later.

Each request carries the flight's scheduled departure as its ``X-Event-Time`` and each
label the same time as its ``event_time``, so the server logs what each row is about and
the monitor (``monitoring: window_on: event_time``) windows the replayed weeks, however
fast they are sent.

>>> ids = request_ids(3, week=12)
>>> ids
['w12-0', 'w12-1', 'w12-2']
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["WeekTraffic", "request_ids", "scheduled_times", "send_feedback", "send_week"]


@dataclass(frozen=True)
class WeekTraffic:
    """What the server answered for one week: a prediction and version per request."""

    predictions: list[float]
    versions: list[int]
    errors: int
    seconds: float


def request_ids(count: int, *, week: int) -> list[str]:
    """Request ids of one week's flights, known to the sender (labels join on them)."""
    return [f"w{week}-{i}" for i in range(count)]


def scheduled_times(flights: Any) -> list[str]:
    """Each flight's scheduled departure (its ``date``'s day at ``sched_dep_time``, HHMM)
    as ISO 8601 text without a zone, which the server reads as UTC: the event time of
    its prediction and of its label.

    >>> import pandas as pd
    >>> scheduled_times(pd.DataFrame({"date": pd.to_datetime(["2013-03-05 05:00"]),
    ...                               "sched_dep_time": [515]}))
    ['2013-03-05T05:15:00']
    """
    import pandas as pd

    hhmm = flights["sched_dep_time"].astype(int)
    times = (
        pd.to_datetime(flights["date"]).dt.normalize()
        + pd.to_timedelta(hhmm // 100, unit="h")
        + pd.to_timedelta(hhmm % 100, unit="min")
    )
    return [t.isoformat() for t in times]


def send_week(
    url: str,
    records: Sequence[dict[str, Any]],
    ids: Sequence[str],
    event_times: Sequence[str] | None = None,
    *,
    concurrency: int = 16,
) -> WeekTraffic:
    """POST each record to ``url``/predict with its request id and, when given, its
    event time (``X-Event-Time``); keep the answers in order."""
    return asyncio.run(_send_all(url, records, ids, event_times, concurrency))


async def _send_all(
    url: str,
    records: Sequence[dict[str, Any]],
    ids: Sequence[str],
    event_times: Sequence[str] | None,
    concurrency: int,
) -> WeekTraffic:
    import time

    import aiohttp

    predictions: list[float] = [float("nan")] * len(records)
    versions = [0] * len(records)
    errors = 0
    queue = iter(range(len(records)))
    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            for i in queue:
                body = orjson.dumps({"records": [records[i]], "request_id": ids[i]})
                headers = {"content-type": "application/json"}
                if event_times is not None:
                    headers["x-event-time"] = event_times[i]
                async with session.post(f"{url}/predict", data=body, headers=headers) as response:
                    answer = orjson.loads(await response.read())
                    if response.status != 200:
                        errors += 1
                        continue
                    predictions[i] = float(answer["predictions"][0])
                    versions[i] = int(answer.get("model_version", 0))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return WeekTraffic(predictions, versions, errors, time.perf_counter() - started)


def send_feedback(
    url: str,
    ids: Sequence[str],
    labels: Sequence[int],
    event_times: Sequence[str] | None = None,
) -> None:
    """POST the labels of earlier requests to ``url``/feedback, in batches, each with
    its request's event time when given."""
    import urllib.request

    times = list(event_times) if event_times is not None else [None] * len(ids)
    items = [
        {"request_id": i, "label": int(label)} | ({"event_time": t} if t is not None else {})
        for i, label, t in zip(ids, labels, times, strict=True)
    ]
    for start in range(0, len(items), 1000):
        body = items[start : start + 1000]
        request = urllib.request.Request(
            f"{url}/feedback",
            data=orjson.dumps(body),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
