"""Event times through a real ``ctloop serve``: each protocol takes the time a row is
about (a row field, a request field or the ``X-Event-Time`` header), the logs keep it
beside the wall-clock time, and a bad one is a 422 naming the field and the value."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pandas as pd
import pytest

from ctloop.artifacts._logs import read_feedback, read_predictions
from ctloop.errors import PredictionRequestError
from ctloop.serve._event_time import parse_event_time
from tests.serve.conftest import ROW, ServingStore
from tests.serve.test_serve_cli import free_port

JAN = datetime(2024, 1, 1, tzinfo=UTC)
FEB = datetime(2024, 2, 1, tzinfo=UTC)
MAR = datetime(2024, 3, 1, 6, tzinfo=UTC)


def test_event_times_are_iso_8601_or_epoch_seconds() -> None:
    assert parse_event_time("2024-01-01T00:00:00Z", "event_time") == JAN.timestamp()
    assert parse_event_time("2024-01-01", "event_time") == JAN.timestamp()  # naive is UTC
    assert parse_event_time("2024-01-01T01:00:00+01:00", "f") == JAN.timestamp()
    assert parse_event_time(JAN.timestamp(), "f") == parse_event_time("1704067200", "f")
    for bad, words in [
        ("yesterday", "neither an ISO 8601 time"),
        (True, "neither"),
        ({"t": 1}, "neither"),
        (JAN.timestamp() * 1000, "not milliseconds"),
    ]:
        with pytest.raises(PredictionRequestError, match=words) as caught:
            parse_event_time(bad, "event_time")
        assert caught.value.status == 422 and caught.value.field == "event_time"


@pytest.fixture
def served(champion: ServingStore) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "CTLOOP_STORE_URL": champion.store_url,
        "CTLOOP_ARTIFACT_URL": champion.artifact_url,
    }
    command = [sys.executable, "-m", "ctloop", "serve", "flights@champion", "--port", str(port)]
    command += ["--poll-seconds", "0", "--log-flush-seconds", "0.2"]
    command += ["--cache-dir", str(champion.tmp / "cache")]
    log = champion.tmp / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(60)


def _v2(event_time: object | None) -> dict[str, object]:
    tensors = [
        {"name": "x", "shape": [1], "datatype": "FP64", "data": [ROW["x"]]},
        {"name": "n", "shape": [1], "datatype": "INT64", "data": [ROW["n"]]},
        {"name": "color", "shape": [1], "datatype": "BYTES", "data": [ROW["color"]]},
        {"name": "flag", "shape": [1], "datatype": "BOOL", "data": [ROW["flag"]]},
    ]
    body: dict[str, object] = {"id": "v2", "inputs": tensors}
    if event_time is not None:
        body["parameters"] = {"event_time": event_time}
    return body


def test_every_protocol_logs_the_event_time_and_refuses_a_bad_one(
    champion: ServingStore, served: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, process = served
    _refused_bad_event_times(url)
    before = datetime.now(UTC)
    jan, feb = JAN.isoformat(), FEB.timestamp()
    answers = [
        # a row field per row (the second row has none: the request's time)
        httpx.post(
            f"{url}/predict",
            json={
                "records": [{**ROW, "event_time": jan}, ROW],
                "event_time": feb,
                "request_id": "rows",
            },
        ),
        httpx.post(
            f"{url}/predict",
            json={"records": [ROW], "request_id": "header"},
            headers={"X-Event-Time": "2024-03-01T06:00:00Z"},
        ),
        httpx.post(
            f"{url}/invocations",
            json={"dataframe_records": [ROW], "event_time": jan, "request_id": "mlflow"},
        ),
        httpx.post(
            f"{url}/invocations",
            content=b"x,n,color,flag,event_time\n0.1,3,red,true,2024-02-01T00:00:00Z\n",
            headers={"content-type": "text/csv", "x-request-id": "csv"},
        ),
        httpx.post(f"{url}/v2/models/flights/infer", json=_v2(MAR.timestamp())),
        httpx.post(f"{url}/predict", json={"records": [ROW], "request_id": "now"}),
        httpx.post(
            f"{url}/feedback",
            json=[
                {"request_id": "rows-0", "label": 1, "event_time": "2024-01-08T00:00:00Z"},
                {"request_id": "now", "label": 0},
            ],
            headers={"X-Event-Time": "2024-03-08T00:00:00Z"},
        ),
    ]
    assert [a.status_code for a in answers] == [200] * len(answers), [a.text for a in answers]
    assert answers[0].json()["predictions"] == answers[5].json()["predictions"] * 2
    process.terminate()  # a clean stop writes what is queued
    process.wait(60)

    workspace = champion.workspace
    frame = read_predictions(workspace, "flights")
    events = dict(zip(frame["request_id"], frame["event_time"], strict=True))
    assert "event_time" not in frame.columns.drop("event_time")  # no feature of that name
    assert events["rows-0"] == pd.Timestamp(JAN) and events["rows-1"] == pd.Timestamp(FEB)
    assert events["header"] == pd.Timestamp(MAR)
    assert events["mlflow"] == pd.Timestamp(JAN)
    csv_ids = [rid for rid in events if rid.startswith("csv")]
    assert [events[rid] for rid in csv_ids] == [pd.Timestamp(FEB)]
    assert events["v2"] == pd.Timestamp(MAR)
    assert events["now"] >= pd.Timestamp(before)  # none sent: the wall clock
    assert (frame["timestamp"] >= pd.Timestamp(before)).all()  # logged now, all of them

    # read by event time, February holds the rows about February, whenever they came
    february = read_predictions(
        workspace, "flights", start=FEB, end=datetime(2024, 2, 28, tzinfo=UTC), on="event_time"
    )
    assert sorted(february["request_id"]) == sorted(["rows-1", *csv_ids])
    labels = read_feedback(workspace, "flights").set_index("request_id")["event_time"]
    assert labels["rows-0"] == pd.Timestamp("2024-01-08", tz="UTC")
    assert labels["now"] == pd.Timestamp("2024-03-08", tz="UTC")  # the header's


def _refused_bad_event_times(url: str) -> None:
    """Each protocol answers a bad event time with a 422 naming the field and value."""
    cases = [
        ("/predict", {"records": [{**ROW, "event_time": "last tuesday"}]}, {}, "last tuesday"),
        ("/predict", {"records": [ROW], "event_time": "soon"}, {}, "soon"),
        ("/predict", {"records": [ROW]}, {"X-Event-Time": "noon"}, "noon"),
        ("/invocations", {"dataframe_records": [ROW], "event_time": [1]}, {}, "[1]"),
        ("/v2/models/flights/infer", _v2("tomorrow"), {}, "tomorrow"),
        ("/feedback", {"request_id": "r", "label": 1, "event_time": "later"}, {}, "later"),
    ]
    for path, body, headers, value in cases:
        answer = httpx.post(f"{url}{path}", json=body, headers=headers)
        assert answer.status_code == 422, (path, answer.text)
        text = answer.text
        assert value in text and ("event_time" in text or "X-Event-Time" in text), text
