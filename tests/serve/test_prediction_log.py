"""Prediction logging: batches by size and time, shutdown, failures, bounds, reading back;
rows the store cannot take kept in a dead-letter file and counted."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop.artifacts._logs import read_predictions
from ctloop.errors import ServingError
from ctloop.serve._prediction_log import PredictionLogger
from ctloop.store.workspace import Workspace
from tests.serve._logs import blobs_refused, dead_letters, row_counts
from tests.serve.conftest import ROW, ServingStore, live_server

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metadata.db'}"


@pytest.fixture
def artifact_url(tmp_path: Path) -> str:
    return str(tmp_path / "artifacts")


@pytest.fixture
def workspace(store_url: str, artifact_url: str) -> Workspace:
    return Workspace.open(store_url, artifacts=artifact_url)


def flights(n: int, start: int = 0) -> tuple[list[str], pd.DataFrame, np.ndarray]:
    """``n`` requests: ids, a feature frame (with a non-default index) and predictions."""
    ids = [f"r{i}" for i in range(start, start + n)]
    frame = pd.DataFrame(
        {"distance": np.arange(start, start + n, dtype=float), "carrier": ["UA"] * n},
        index=range(100, 100 + n),
    )
    return ids, frame, np.linspace(0, 1, n)


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Wait until ``condition()`` holds (a background thread's work), or fail."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the background writer did not get there"
        time.sleep(0.01)


def test_a_full_batch_is_written_without_waiting_for_the_timer(
    workspace: Workspace, artifact_url: str
) -> None:
    logger = PredictionLogger(workspace, "flights", flush_rows=10, flush_seconds=3600)
    for start in (0, 5):
        logger.log(3, "flights", *flights(5, start), timestamp=T0 + start)
    wait_for(lambda: logger.logged_rows == 10)
    batches = workspace.logs.predictions("flights")
    assert [(b.rows, b.version, b.deployment) for b in batches] == [(10, 3, "flights")]
    assert batches[0].first_at.timestamp() == T0 and batches[0].last_at.timestamp() == T0 + 5
    assert logger.close()


def test_a_partial_batch_is_written_when_the_timer_fires(
    workspace: Workspace, artifact_url: str
) -> None:
    logger = PredictionLogger(workspace, "flights", flush_rows=1000, flush_seconds=0.05)
    logger.log(1, None, *flights(3), timestamp=T0)
    wait_for(lambda: logger.logged_rows == 3)
    assert [b.rows for b in workspace.logs.predictions("flights")] == [3]
    logger.close()


def test_close_writes_what_is_queued_with_every_column(
    workspace: Workspace, artifact_url: str
) -> None:
    logger = PredictionLogger(workspace, "flights", flush_seconds=3600)
    logger.log(3, "flights", *flights(4), timestamp=T0)
    logger.log(4, "flights", *flights(2, start=4), timestamp=T0 + 1)
    assert logger.close()
    assert (logger.logged_rows, logger.errors, logger.dropped) == (6, 0, 0)
    # one batch per model version
    assert [b.version for b in workspace.logs.predictions("flights")] == [3, 4]
    frame = read_predictions(workspace, "flights")
    assert list(frame.columns) == [
        "request_id",
        "timestamp",
        "event_time",
        "model_version",
        "deployment",
        "latency_ms",
        "distance",
        "carrier",
        "prediction",
    ]
    assert frame["request_id"].tolist() == [f"r{i}" for i in range(6)]
    assert frame["model_version"].tolist() == [3, 3, 3, 3, 4, 4]
    assert frame["distance"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert frame["prediction"].tolist()[:4] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["timestamp"].iloc[-1] == pd.Timestamp(T0 + 1, unit="s", tz="UTC")
    assert read_predictions(workspace, "flights", version=4)["request_id"].tolist() == [
        "r4",
        "r5",
    ]


def test_reading_a_window_keeps_only_rows_stamped_inside_it(
    workspace: Workspace, artifact_url: str
) -> None:
    logger = PredictionLogger(workspace, "flights", flush_seconds=3600)
    for i in range(3):
        logger.log(1, "flights", *flights(2, start=2 * i), timestamp=T0 + 10 * i)
        assert logger.flush(timeout=30)
    logger.close()
    assert len(workspace.logs.predictions("flights")) == 3
    window = read_predictions(workspace, "flights", start=T0 + 5, end=T0 + 15)
    assert window["request_id"].tolist() == ["r2", "r3"]
    since = read_predictions(workspace, "flights", start=datetime.fromtimestamp(T0 + 10, UTC))
    assert since["request_id"].tolist() == ["r2", "r3", "r4", "r5"]
    empty = read_predictions(workspace, "taxi")
    assert empty.empty and "request_id" in empty.columns


def test_a_failing_store_is_counted_and_never_raises(
    tmp_path: Path, workspace: Workspace, store_url: str
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the artifact folder should be")
    broken = Workspace.open(store_url, artifacts=str(blocker / "artifacts"))
    logger = PredictionLogger(
        broken,
        "flights",
        flush_seconds=3600,
        max_attempts=2,
        retry_seconds=0.01,
    )
    logger.log(1, "flights", *flights(3), timestamp=T0)
    assert logger.close()
    # two attempts at the batch, then one per part of it; no dead-letter file either
    assert (logger.logged_rows, logger.dead_lettered, logger.dropped) == (0, 0, 3)
    assert logger.errors >= 2 and logger.last_error is not None
    assert workspace.logs.predictions("flights") == []


def test_a_full_queue_drops_and_counts_rows(workspace: Workspace, artifact_url: str) -> None:
    logger = PredictionLogger(workspace, "flights", flush_seconds=3600, max_queue_rows=5)
    logger.log(1, "flights", *flights(3), timestamp=T0)
    logger.log(1, "flights", *flights(3, start=3), timestamp=T0)  # 6 > 5: dropped
    logger.log(1, "flights", *flights(2, start=6), timestamp=T0)
    assert (logger.pending_rows, logger.dropped) == (5, 3)
    assert logger.close()
    assert logger.logged_rows == 5
    logged = read_predictions(workspace, "flights")["request_id"].tolist()
    assert logged == ["r0", "r1", "r2", "r6", "r7"]
    logger.log(1, "flights", *flights(1), timestamp=T0)  # after close: dropped
    assert logger.dropped == 4
    assert logger.counts() == {
        "accepted": 5,
        "written": 5,
        "rejected": 0,
        "dead_letter": 0,
        "dropped": 4,
    }


def test_multi_output_predictions_are_kept_per_row(workspace: Workspace, artifact_url: str) -> None:
    with PredictionLogger(workspace, "iris", flush_seconds=3600) as logger:
        ids, frame, _ = flights(2)
        logger.log(1, None, ids, frame, np.array([[0.1, 0.9], [0.7, 0.3]]), timestamp=T0)
    frame = read_predictions(workspace, "iris")
    assert [list(p) for p in frame["prediction"]] == [[0.1, 0.9], [0.7, 0.3]]
    assert frame["deployment"].isna().all()


def test_inputs_of_different_lengths_are_a_caller_error(
    workspace: Workspace, artifact_url: str
) -> None:
    with PredictionLogger(workspace, "flights", flush_seconds=3600) as logger:
        ids, frame, predictions = flights(3)
        with pytest.raises(ServingError, match="3 request ids, 3 input rows and 2 predictions"):
            logger.log(1, None, ids, frame, predictions[:2], timestamp=T0)
    assert (logger.logged_rows, logger.dropped) == (0, 0)
    assert logger.counts()["rejected"] == 3


def test_pending_rows_are_prepared_together_when_written(
    workspace: Workspace, artifact_url: str
) -> None:
    from ctloop.serve._prediction_log import PendingRows

    calls: list[int] = []

    def prepare(records: list[dict[str, object]]) -> pd.DataFrame:
        calls.append(len(records))
        return pd.DataFrame(records).astype({"distance": "float64"})

    logger = PredictionLogger(workspace, "flights", flush_seconds=3600)
    for i in range(3):
        rows = [{"distance": 10 * i + k, "carrier": "UA"} for k in range(2)]
        pending = PendingRows(prepare, rows)
        logger.log(1, "flights", [f"r{i}-{k}" for k in range(2)], pending, np.ones(2), T0 + i)
    assert logger.close() and calls == [6]  # one frame for the whole batch
    frame = read_predictions(workspace, "flights")
    assert frame["distance"].tolist() == [0.0, 1.0, 10.0, 11.0, 20.0, 21.0]
    assert frame["request_id"].tolist()[:2] == ["r0-0", "r0-1"]


def test_a_row_the_store_cannot_take_leaves_the_rest_of_its_batch_written(
    workspace: Workspace, artifact_url: str
) -> None:
    logger = PredictionLogger(workspace, "flights", flush_seconds=3600, retry_seconds=0.01)
    logger.log(1, "flights", *flights(3), timestamp=T0)
    ids, frame, predictions = flights(2, start=3)
    frame["carrier"] = ["UA", complex(1, 2)]  # Arrow has no type for a complex number
    logger.log(1, "flights", ids, frame, predictions, timestamp=T0 + 1)
    logger.log(1, "flights", *flights(2, start=5), timestamp=T0 + 2)
    assert logger.close()
    assert logger.counts() == {
        "accepted": 7,
        "written": 6,
        "rejected": 0,
        "dead_letter": 1,
        "dropped": 0,
    }
    logged = read_predictions(workspace, "flights")
    assert sorted(logged["request_id"]) == ["r0", "r1", "r2", "r3", "r5", "r6"]
    (kept,) = dead_letters(artifact_url, "flights", "predictions")
    assert kept == {
        "request_id": "r4",
        "timestamp": "2026-06-01T12:00:01+00:00",
        "event_time": "2026-06-01T12:00:01+00:00",
        "model_version": 1,
        "deployment": "flights",
        "latency_ms": None,
        "distance": 4.0,
        "carrier": "(1+2j)",
        "prediction": 1.0,
    }


def test_predictions_the_store_cannot_take_are_dead_lettered_and_counted(
    champion: ServingStore,
) -> None:
    def counts() -> dict[str, float]:
        return row_counts(live.client.get("/metrics").text, "ctloop_prediction_log_rows")

    with live_server(champion.config()) as live:
        first = live.client.post("/predict", json={"records": [ROW], "request_id": "r1"})
        assert first.status_code == 200
        wait_for(lambda: counts().get("written") == 1)
        with blobs_refused(champion.artifact_url):
            rows = {"records": [ROW, {**ROW, "x": 2.5}], "request_id": "r2"}
            assert live.client.post("/predict", json=rows).status_code == 200
            wait_for(lambda: counts().get("dead_letter") == 2)
        final = counts()
        metrics = live.client.get("/metrics").text
    assert final == {"accepted": 3, "written": 1, "rejected": 0, "dead_letter": 2, "dropped": 0}
    assert "ctloop_prediction_log_dropped_rows 0.0" in metrics
    logged = read_predictions(champion.workspace, "flights")
    assert logged["request_id"].tolist() == ["r1"]
    kept = dead_letters(champion.artifact_url, "flights", "predictions")
    assert [r["request_id"] for r in kept] == ["r2-0", "r2-1"]
    assert [r["x"] for r in kept] == [ROW["x"], 2.5] and kept[0]["color"] == "red"
    assert kept[0]["prediction"] == pytest.approx(logged["prediction"].iloc[0])


def test_each_row_keeps_its_request_latency_and_old_batches_read_as_missing(
    workspace: Workspace, artifact_url: str
) -> None:
    from ctloop.artifacts._logs import LogWriter

    # a batch written before latencies were logged: the same columns without latency_ms
    old = pd.DataFrame(
        {
            "request_id": pd.array(["old"], dtype="string"),
            "timestamp": pd.Series([pd.Timestamp(T0 - 60, unit="s", tz="UTC")]),
            "model_version": pd.array([1], dtype="int64"),
            "deployment": pd.array(["flights"], dtype="string"),
            "distance": [9.0],
            "carrier": ["AA"],
            "prediction": [0.5],
        }
    )
    writer = LogWriter(workspace)
    artifact_id = writer.save(old)
    stamp = datetime.fromtimestamp(T0 - 60, UTC)
    workspace.logs.add_predictions(
        model="flights", version=1, deployment="flights", artifact_id=artifact_id, rows=1,
        first_at=stamp, last_at=stamp, first_event_at=stamp, last_event_at=stamp,
    )  # fmt: skip
    writer.cleanup()
    assert read_predictions(workspace, "flights")["latency_ms"].isna().all()
    with PredictionLogger(workspace, "flights", flush_seconds=3600) as logger:
        logger.log(1, "flights", *flights(2), timestamp=T0, latency_ms=12.5)
        logger.log(1, "flights", *flights(1, start=2), timestamp=T0 + 1, latency_ms=3.0)
    frame = read_predictions(workspace, "flights")
    assert frame["request_id"].tolist() == ["old", "r0", "r1", "r2"]
    assert frame["latency_ms"].tolist()[1:] == [12.5, 12.5, 3.0]
    assert np.isnan(frame["latency_ms"].iloc[0])


def test_a_served_request_logs_how_long_it_took(champion: ServingStore) -> None:
    with live_server(champion.config()) as live:
        rows = {"records": [ROW, {**ROW, "x": 2.5}], "request_id": "two"}
        assert live.client.post("/predict", json=rows).status_code == 200
        assert live.client.post("/predict", json={"records": [ROW]}).status_code == 200
        wait_for(lambda: len(read_predictions(champion.workspace, "flights")) == 3)
    logged = read_predictions(champion.workspace, "flights")
    latencies = logged["latency_ms"]
    assert (latencies > 0).all() and (latencies < 30_000).all()
    two = logged[logged["request_id"].str.startswith("two-")]
    assert two["latency_ms"].nunique() == 1  # one request, one latency for its rows
