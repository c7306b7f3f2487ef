"""A prediction log batch is built column by column for all its requests at once; it holds
exactly what one frame per request, concatenated, would hold (values, dtypes, order)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ctloop.artifacts._logs import BASE_COLUMNS, read_predictions
from ctloop.serve._prediction_log import (
    FrameRows,
    PendingRows,
    PredictionLogger,
    _batch_frame,
    _Logged,
)
from ctloop.store._operations import to_utc
from ctloop.store.workspace import Workspace

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp() + 0.123457  # not a whole second


def prepare(records: list[dict[str, Any]]) -> pd.DataFrame:
    """A model's input frame of plain records (as ``Model.prepare`` builds one)."""
    frame = pd.DataFrame(records)
    return frame.astype({"distance": "float64", "carrier": pd.CategoricalDtype(["AA", "UA"])})


def one_request(item: _Logged) -> pd.DataFrame:
    """The rows of one logged request, built on their own: the reference a batch must match."""
    count = len(item.request_ids)
    features = item.frame
    if isinstance(features, PendingRows):
        features = prepare(features.records)
    elif isinstance(features, FrameRows):
        features = features.frame.iloc[features.start : features.stop].copy()
    base = pd.DataFrame(
        {
            "request_id": pd.array(item.request_ids, dtype="string"),
            "timestamp": pd.Series(
                [pd.Timestamp(to_utc(item.timestamp))] * count, dtype="datetime64[us, UTC]"
            ),
            "event_time": pd.Series(
                pd.to_datetime(item.event_time_list(), unit="s", utc=True).as_unit("us")
            ),
            "model_version": pd.array([item.version] * count, dtype="int64"),
            "deployment": pd.array([item.deployment] * count, dtype="string"),
            "latency_ms": pd.Series([item.latency_ms] * count, dtype="float64"),
        }
    )
    features = features.reset_index(drop=True).drop(columns=list(BASE_COLUMNS), errors="ignore")
    values = list(item.predictions) if item.predictions.ndim > 1 else item.predictions
    return pd.concat([base, features], axis=1).assign(prediction=values)


def requests(count: int) -> list[_Logged]:
    """``count`` requests of one to three rows: plain records, prepared frames (with an
    index of their own) and parts of a batch's frame (two requests after one another
    share one, after a row of another request) mixed; some with event times, latencies
    or a deployment and some without."""
    rows = [
        [
            {"distance": float(10 * i + k), "carrier": "UA" if (i + k) % 2 else "AA"}
            for k in range(1 + i % 3)
        ]
        for i in range(count)
    ]
    frames: list[pd.DataFrame | PendingRows | FrameRows] = []
    for i, own in enumerate(rows):
        if i % 5 == 4:
            frames.append(prepare(own).set_axis(range(50, 50 + len(own))))
        elif i % 5 == 2 and i + 1 < count:
            pair = [len(own), len(rows[i + 1])]
            batch = prepare([{"distance": -1.0, "carrier": "AA"}, *own, *rows[i + 1]])
            frames += FrameRows.split(batch, [1, *pair])[1:]
        elif i % 5 != 3 or i == count - 1:
            frames.append(PendingRows(prepare, own))
    logged = []
    for i, (own, frame) in enumerate(zip(rows, frames, strict=True)):
        events = tuple(T0 - 60 * k if k % 2 else None for k in range(len(own))) if i % 2 else None
        logged.append(
            _Logged(
                version=2,
                deployment=None if i % 5 == 0 else "flights",
                request_ids=[f"r{i}-{k}" for k in range(len(own))],
                frame=frame,
                predictions=np.linspace(0, 1, len(own)) + i,
                timestamp=T0 + i / 7,
                event_times=events,
                latency_ms=None if i % 3 == 0 else 1.5 + i,
            )
        )
    return logged


def test_a_batch_holds_what_one_frame_per_request_would() -> None:
    logged = requests(40)
    expected = pd.concat([one_request(item) for item in logged], ignore_index=True)
    pd.testing.assert_frame_equal(_batch_frame(logged), expected)


def test_a_run_of_one_batch_frame_is_cut_once() -> None:
    batch = prepare([{"distance": float(i), "carrier": "UA"} for i in range(6)])
    parts = FrameRows.split(batch, [2, 1, 3])
    logged = [
        _Logged(1, None, [f"r{i}"] * len(p), p, np.zeros(len(p)), T0) for i, p in enumerate(parts)
    ]
    frame = _batch_frame(logged)
    assert frame["distance"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert frame["request_id"].tolist() == ["r0", "r0", "r1", "r2", "r2", "r2"]
    pd.testing.assert_frame_equal(
        frame, pd.concat([one_request(item) for item in logged], ignore_index=True)
    )


def test_multi_output_predictions_of_many_requests_stay_one_value_a_row() -> None:
    logged = [
        _Logged(1, "iris", [f"r{i}"], prepare([{"distance": 1.0, "carrier": "UA"}]),
                np.array([[0.1 * i, 1 - 0.1 * i]]), T0)
        for i in range(3)
    ]  # fmt: skip
    frame = _batch_frame(logged)
    assert [list(p) for p in frame["prediction"]] == [[0.0, 1.0], [0.1, 0.9], [0.2, 0.8]]
    expected = pd.concat([one_request(item) for item in logged], ignore_index=True)
    pd.testing.assert_frame_equal(frame, expected)


def test_a_logged_batch_reads_back_as_the_requests_sent_it(tmp_path: Path) -> None:
    workspace = Workspace.open(f"sqlite:///{tmp_path / 'm.db'}", artifacts=str(tmp_path / "a"))
    logged = requests(25)
    with PredictionLogger(workspace, "flights", flush_seconds=3600) as logger:
        for item in logged:
            logger.log(
                item.version,
                item.deployment,
                item.request_ids,
                item.frame,
                item.predictions,
                item.timestamp,
                event_times=item.event_times,
                latency_ms=item.latency_ms,
            )
    back = read_predictions(workspace, "flights").sort_values("request_id", kind="stable")
    expected = pd.concat([one_request(item) for item in logged], ignore_index=True)
    expected = expected.sort_values("request_id", kind="stable")
    assert back["request_id"].tolist() == expected["request_id"].tolist()
    for column in ("timestamp", "event_time"):
        assert back[column].tolist() == expected[column].tolist()
    assert back["latency_ms"].tolist() == pytest.approx(
        expected["latency_ms"].tolist(), nan_ok=True
    )
    assert back["carrier"].astype(str).tolist() == expected["carrier"].astype(str).tolist()
    assert back["prediction"].tolist() == expected["prediction"].tolist()
    assert logger.logged_rows == len(expected)


def test_a_bad_row_of_a_shared_batch_frame_is_kept_alone(tmp_path: Path) -> None:
    from tests.serve._logs import dead_letters

    artifacts = tmp_path / "a"
    workspace = Workspace.open(f"sqlite:///{tmp_path / 'm.db'}", artifacts=str(artifacts))
    batch = pd.DataFrame({"distance": [1.0, 2.0, 3.0], "carrier": ["UA", complex(1, 2), "AA"]})
    first, second = FrameRows.split(batch, [1, 2])  # Arrow has no type for a complex number
    with PredictionLogger(workspace, "flights", flush_seconds=3600, retry_seconds=0.01) as log:
        log.log(1, "flights", ["r0"], first, np.array([0.1]), T0)
        log.log(1, "flights", ["r1-0", "r1-1"], second, np.array([0.2, 0.3]), T0)
    assert (log.logged_rows, log.dead_lettered) == (2, 1)
    assert sorted(read_predictions(workspace, "flights")["request_id"]) == ["r0", "r1-1"]
    (kept,) = dead_letters(str(artifacts), "flights", "predictions")
    assert (kept["request_id"], kept["distance"], kept["carrier"]) == ("r1-0", 2.0, "(1+2j)")
