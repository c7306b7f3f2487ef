"""Feedback: labels logged or ingested from files, read back and joined to predictions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop.errors import FeedbackError
from ctloop.serve.feedback import (
    FeedbackLogger,
    ingest_feedback_file,
    join_feedback,
    read_feedback,
)
from ctloop.serve.prediction_log import PredictionLogger, read_predictions
from ctloop.store import operations as ops

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metadata.db'}"


@pytest.fixture
def artifact_url(tmp_path: Path) -> str:
    return str(tmp_path / "artifacts")


def test_logged_labels_are_read_back_per_model(store_url: str, artifact_url: str) -> None:
    with FeedbackLogger(store_url, artifact_url, "flights", flush_seconds=3600) as feedback:
        feedback.log(["r1", "r2"], [1, 0], T0)
        feedback.log(["r3"], [1], T0 + 60)
    with FeedbackLogger(store_url, artifact_url, "taxi", flush_seconds=3600) as other:
        other.log(["t1"], [0], T0)
    assert (feedback.logged_rows, feedback.errors) == (3, 0)
    labels = read_feedback(store_url, artifact_url, "flights")
    assert labels["request_id"].tolist() == ["r1", "r2", "r3"]
    assert labels["label"].tolist() == [1, 0, 1]
    assert labels["timestamp"].iloc[-1] == pd.Timestamp(T0 + 60, unit="s", tz="UTC")
    assert read_feedback(store_url, artifact_url, "flights", start=T0 + 1)[
        "request_id"
    ].tolist() == ["r3"]
    assert [b.rows for b in ops.feedback_logs(store_url, "flights")] == [3]


def test_ids_and_labels_must_pair_up(store_url: str, artifact_url: str) -> None:
    with (
        FeedbackLogger(store_url, artifact_url) as feedback,
        pytest.raises(FeedbackError, match="2 request ids but 1 labels"),
    ):
        feedback.log(["r1", "r2"], [1], T0)
    assert feedback.logged_rows == 0


def test_join_matches_by_request_id_and_the_latest_label_wins() -> None:
    predictions = pd.DataFrame(
        {
            "request_id": ["r1", "r2", "r3"],
            "timestamp": pd.to_datetime([T0] * 3, unit="s", utc=True),
            "prediction": [0.9, 0.2, 0.6],
        }
    )
    feedback = pd.DataFrame(
        {
            "request_id": ["r2", "r1", "r1"],
            "label": [0, 0, 1],
            "timestamp": pd.to_datetime([T0 + 5, T0 + 1, T0 + 9], unit="s", utc=True),
        }
    )
    joined = join_feedback(predictions, feedback)
    assert joined[["request_id", "prediction", "label"]].values.tolist() == [
        ["r1", 0.9, 1],
        ["r2", 0.2, 0],
    ]
    assert joined["label_timestamp"].iloc[0] == pd.Timestamp(T0 + 9, unit="s", tz="UTC")
    assert joined["timestamp"].iloc[0] == pd.Timestamp(T0, unit="s", tz="UTC")
    everything = join_feedback(predictions, feedback, how="left")
    assert everything["label"].isna().tolist() == [False, False, True]


def test_an_ingested_file_joins_logged_predictions(
    tmp_path: Path, store_url: str, artifact_url: str
) -> None:
    with PredictionLogger(store_url, artifact_url, "flights", flush_seconds=3600) as logger:
        frame = pd.DataFrame({"distance": [100.0, 200.0, 300.0]})
        logger.log(1, "flights", ["a", "b", "c"], frame, np.array([0.1, 0.8, 0.4]), T0)
    path = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["c", "a"], "delayed": [1, 0], "timestamp": [T0 + 30, T0 + 40]}).to_csv(
        path, index=False
    )
    batch = ingest_feedback_file(
        store_url, artifact_url, path, model="flights", id_column="id", label_column="delayed"
    )
    assert batch.rows == 2 and batch.model == "flights"
    assert batch.first_at.timestamp() == T0 + 30 and batch.last_at.timestamp() == T0 + 40
    joined = join_feedback(
        read_predictions(store_url, artifact_url, "flights"),
        read_feedback(store_url, artifact_url, "flights"),
    )
    assert joined[["request_id", "distance", "label"]].values.tolist() == [
        ["a", 100.0, 0],
        ["c", 300.0, 1],
    ]


def test_ingesting_a_file_without_the_label_column_names_it(
    tmp_path: Path, store_url: str, artifact_url: str
) -> None:
    path = tmp_path / "labels.parquet"
    pd.DataFrame({"request_id": ["a"], "y": [1]}).to_parquet(path)
    with pytest.raises(FeedbackError, match=r"no column 'label'.*--label-column"):
        ingest_feedback_file(store_url, artifact_url, path)
    with pytest.raises(FeedbackError, match="does not exist"):
        ingest_feedback_file(store_url, artifact_url, tmp_path / "missing.csv")
    assert ops.feedback_logs(store_url) == []
