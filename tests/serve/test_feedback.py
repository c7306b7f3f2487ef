"""Feedback: labels checked against the model, logged or ingested from files, read back and
joined to predictions; labels the store cannot take kept in a dead-letter file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop.artifacts._logs import (
    ingest_feedback_file,
    join_feedback,
    read_feedback,
    read_predictions,
)
from ctloop.artifacts.model import Model
from ctloop.errors import FeedbackError, PredictionRequestError
from ctloop.serve._feedback import (
    FeedbackLogger,
    check_labels,
    label_type,
)
from ctloop.serve._prediction_log import PredictionLogger
from ctloop.store.workspace import Workspace
from tests.serve import _models
from tests.serve._logs import blobs_refused, dead_letters, row_counts, wait_for
from tests.serve.conftest import ServingStore, live_server

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


def test_logged_labels_are_read_back_per_model(workspace: Workspace, artifact_url: str) -> None:
    with FeedbackLogger(workspace, "flights", flush_seconds=3600) as feedback:
        feedback.log(["r1", "r2"], [1, 0], T0)
        feedback.log(["r3"], [1], T0 + 60)
    with FeedbackLogger(workspace, "taxi", flush_seconds=3600) as other:
        other.log(["t1"], [0], T0)
    assert (feedback.logged_rows, feedback.errors) == (3, 0)
    labels = read_feedback(workspace, "flights")
    assert labels["request_id"].tolist() == ["r1", "r2", "r3"]
    assert labels["label"].tolist() == [1, 0, 1]
    assert labels["timestamp"].iloc[-1] == pd.Timestamp(T0 + 60, unit="s", tz="UTC")
    assert read_feedback(workspace, "flights", start=T0 + 1)["request_id"].tolist() == ["r3"]
    assert [b.rows for b in workspace.logs.feedback("flights")] == [3]


def test_ids_and_labels_must_pair_up(workspace: Workspace, artifact_url: str) -> None:
    with (
        FeedbackLogger(workspace) as feedback,
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
    tmp_path: Path, workspace: Workspace, artifact_url: str
) -> None:
    with PredictionLogger(workspace, "flights", flush_seconds=3600) as logger:
        frame = pd.DataFrame({"distance": [100.0, 200.0, 300.0]})
        logger.log(1, "flights", ["a", "b", "c"], frame, np.array([0.1, 0.8, 0.4]), T0)
    path = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["c", "a"], "delayed": [1, 0], "timestamp": [T0 + 30, T0 + 40]}).to_csv(
        path, index=False
    )
    batch = ingest_feedback_file(
        workspace, path, model="flights", id_column="id", label_column="delayed"
    )
    assert batch.rows == 2 and batch.model == "flights"
    assert batch.first_at.timestamp() == T0 + 30 and batch.last_at.timestamp() == T0 + 40
    joined = join_feedback(
        read_predictions(workspace, "flights"),
        read_feedback(workspace, "flights"),
    )
    assert joined[["request_id", "distance", "label"]].values.tolist() == [
        ["a", 100.0, 0],
        ["c", 300.0, 1],
    ]


def test_ingesting_a_file_without_the_label_column_names_it(
    tmp_path: Path, workspace: Workspace, artifact_url: str
) -> None:
    path = tmp_path / "labels.parquet"
    pd.DataFrame({"request_id": ["a"], "y": [1]}).to_parquet(path)
    with pytest.raises(FeedbackError, match=r"no column 'label'.*--label-column"):
        ingest_feedback_file(workspace, path)
    with pytest.raises(FeedbackError, match="does not exist"):
        ingest_feedback_file(workspace, tmp_path / "missing.csv")
    assert workspace.logs.feedback() == []


# -- labels checked before the answer, and never lost after it -------------------------


def test_a_label_of_the_wrong_type_is_refused_and_the_valid_ones_are_kept(
    champion: ServingStore,
) -> None:
    with live_server(champion.config()) as live:
        pair = [{"request_id": "a", "label": 1}, {"request_id": "b", "label": 0}]
        first = live.client.post("/feedback", json=pair)
        wrong = live.client.post("/feedback", json={"request_id": "c", "label": "yes"})
        counts = row_counts(live.client.get("/metrics").text, "ctloop_feedback_rows")
    assert first.status_code == 200 and first.json()["logged"] is True
    assert wrong.status_code == 422, wrong.text
    body = wrong.json()
    assert body["field"] == "label"
    assert "'c'" in body["error"] and "'yes'" in body["error"] and "integer" in body["error"]
    assert counts["accepted"] == 2 and counts["rejected"] == 1
    labels = read_feedback(champion.workspace, "flights")
    assert labels["request_id"].tolist() == ["a", "b"] and labels["label"].tolist() == [1, 0]


def test_labels_of_a_model_without_a_label_type_are_written_one_type_per_batch(
    store: ServingStore,
) -> None:
    store.register(_models.constant(0.5), alias="champion")
    with live_server(store.config()) as live:
        pair = [{"request_id": "a", "label": 1}, {"request_id": "b", "label": 0}]
        answers = [
            live.client.post("/feedback", json=pair),
            live.client.post("/feedback", json={"request_id": "c", "label": "yes"}),
            live.client.post("/feedback", json={"request_id": "d", "label": None}),
        ]
    assert [a.status_code for a in answers] == [200, 200, 422]
    assert "'d'" in answers[2].json()["error"]
    labels = read_feedback(store.workspace, "flights")
    assert sorted(zip(labels["request_id"], labels["label"], strict=True)) == [
        ("a", 1),
        ("b", 0),
        ("c", "yes"),
    ]
    assert dead_letters(store.artifact_url, "flights", "feedback") == []


def test_labels_the_store_cannot_take_are_dead_lettered_and_counted(
    champion: ServingStore,
) -> None:
    def counts() -> dict[str, float]:
        return row_counts(live.client.get("/metrics").text, "ctloop_feedback_rows")

    with live_server(champion.config()) as live:
        pair = [{"request_id": "a", "label": 1}, {"request_id": "b", "label": 0}]
        assert live.client.post("/feedback", json=pair).status_code == 200
        wait_for(lambda: counts().get("written") == 2)
        with blobs_refused(champion.artifact_url):
            later = [{"request_id": "c", "label": 0}, {"request_id": "d", "label": 1}]
            assert live.client.post("/feedback", json=later).json()["logged"] is True
            wait_for(lambda: counts().get("dead_letter") == 2)
        final = counts()
    assert final == {
        "accepted": 4,
        "written": 2,
        "rejected": 0,
        "dead_letter": 2,
        "dropped": 0,
    }
    labels = read_feedback(champion.workspace, "flights")
    assert labels["request_id"].tolist() == ["a", "b"]
    kept = dead_letters(champion.artifact_url, "flights", "feedback")
    assert [(r["request_id"], r["label"]) for r in kept] == [("c", 0), ("d", 1)]
    # a dead-letter file is a feedback file: ingesting it brings the labels back
    (path,) = (Path(champion.artifact_url) / "dead-letter" / "flights").glob("*.jsonl")
    assert ingest_feedback_file(champion.workspace, path, "flights").rows == 2
    labels = read_feedback(champion.workspace, "flights")
    assert sorted(labels["request_id"]) == ["a", "b", "c", "d"]


def test_a_row_the_store_cannot_take_leaves_the_rest_of_its_batch_written(
    workspace: Workspace, artifact_url: str
) -> None:
    feedback = FeedbackLogger(workspace, "flights", flush_seconds=3600, retry_seconds=0.01)
    feedback.log(["a", "b"], [1, 0], T0)
    feedback.log(["c", "d"], [1, complex(1, 2)], T0 + 1)  # Arrow has no complex type
    feedback.log(["e"], [0], T0 + 2)
    assert feedback.close()
    assert feedback.counts() == {
        "accepted": 5,
        "written": 4,
        "rejected": 0,
        "dead_letter": 1,
        "dropped": 0,
    }
    labels = read_feedback(workspace, "flights")
    assert labels["request_id"].tolist() == ["a", "b", "c", "e"]
    assert dead_letters(artifact_url, "flights", "feedback") == [
        {
            "request_id": "d",
            "label": "(1+2j)",
            "timestamp": "2026-06-01T12:00:01+00:00",
            "event_time": "2026-06-01T12:00:01+00:00",
        }
    ]


def test_a_store_that_takes_nothing_loses_rows_loudly_not_silently(
    tmp_path: Path, store_url: str
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the artifact folder should be")
    broken = Workspace.open(store_url, artifacts=str(blocker / "artifacts"))
    feedback = FeedbackLogger(broken, "flights", flush_seconds=3600, max_attempts=1)
    feedback.log(["a", "b"], [1, 0], T0)
    assert feedback.close()
    assert feedback.counts()["dropped"] == 2 and feedback.counts()["written"] == 0
    assert feedback.last_error is not None


def classifier_of(labels: list[object]) -> Model:
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": np.arange(len(labels), dtype=float)})
    return Model.from_estimator(LogisticRegression().fit(frame, labels), frame)


def test_the_label_type_comes_from_the_model() -> None:
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    assert label_type(_models.classifier()) == "integer"
    assert label_type(classifier_of(["no", "yes", "no", "yes"])) == "string"
    assert label_type(classifier_of([True, False, True, False])) == "boolean"
    assert label_type(Model.from_estimator(LinearRegression().fit(frame, [1, 2, 3]), frame)) == (
        "float"
    )
    assert label_type(_models.constant(0.5)) is None


@pytest.mark.parametrize(
    ("kind", "sent", "kept"),
    [
        ("integer", [1, 0, 1.0], [1, 0, 1]),
        ("float", [1, 0.25, -3], [1.0, 0.25, -3.0]),
        ("boolean", [True, False], [True, False]),
        ("string", ["yes", "no"], ["yes", "no"]),
        (None, [1, "yes", True, 0.5], [1, "yes", True, 0.5]),
    ],
)
def test_labels_of_the_right_type_are_kept(
    kind: str | None, sent: list[object], kept: list[object]
) -> None:
    ids = [f"r{i}" for i in range(len(sent))]
    checked = check_labels(ids, sent, kind, model="flights")
    assert checked == kept and [type(v) for v in checked] == [type(v) for v in kept]


VALID: dict[str | None, object] = {
    "integer": 1,
    "float": 1.5,
    "boolean": True,
    "string": "x",
    None: 1,
}


@pytest.mark.parametrize(
    ("kind", "label", "words"),
    [
        ("integer", "yes", "integer"),
        ("integer", True, "integer"),
        ("integer", 0.5, "integer"),
        ("integer", 2**63, "64-bit"),
        ("float", "0.5", "number"),
        ("float", False, "number"),
        ("boolean", 1, "true or false"),
        ("string", 1, "string"),
        ("integer", None, "null"),
        (None, None, "null"),
    ],
)
def test_a_label_of_the_wrong_type_names_the_request_and_the_value(
    kind: str | None, label: object, words: str
) -> None:
    with pytest.raises(PredictionRequestError) as caught:
        check_labels(["ok", "bad"], [VALID[kind], label], kind, model="flights")
    error = caught.value
    assert (error.status, error.field) == (422, "label")
    assert "'bad'" in str(error) and repr(label) in str(error) and words in str(error)
