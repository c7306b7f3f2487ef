"""Real HTTP traffic for the demo: one request per flight, labels sent back later.

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

__all__ = ["WeekTraffic", "request_ids", "send_feedback", "send_week"]


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


def send_week(
    url: str, records: Sequence[dict[str, Any]], ids: Sequence[str], *, concurrency: int = 16
) -> WeekTraffic:
    """POST each record to ``url``/predict with its request id; keep the answers in order."""
    return asyncio.run(_send_all(url, records, ids, concurrency))


async def _send_all(
    url: str, records: Sequence[dict[str, Any]], ids: Sequence[str], concurrency: int
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
                async with session.post(
                    f"{url}/predict", data=body, headers={"content-type": "application/json"}
                ) as response:
                    answer = orjson.loads(await response.read())
                    if response.status != 200:
                        errors += 1
                        continue
                    predictions[i] = float(answer["predictions"][0])
                    versions[i] = int(answer.get("model_version", 0))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return WeekTraffic(predictions, versions, errors, time.perf_counter() - started)


def send_feedback(url: str, ids: Sequence[str], labels: Sequence[int]) -> None:
    """POST the labels of earlier requests to ``url``/feedback, in batches."""
    import urllib.request

    for start in range(0, len(ids), 1000):
        body = [
            {"request_id": i, "label": int(label)}
            for i, label in zip(ids[start : start + 1000], labels[start : start + 1000])
        ]
        request = urllib.request.Request(
            f"{url}/feedback",
            data=orjson.dumps(body),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
