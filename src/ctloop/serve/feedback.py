"""Feedback: the ground-truth labels that arrive after a prediction, joined to it by
request id.

Labels come one request at a time (:class:`FeedbackLogger`, batched in the background
like predictions) or as a file (:func:`ingest_feedback_file`, ``ctloop feedback ingest``).
Each batch is a Parquet ``Dataset`` artifact with the columns ``request_id``, ``label``
and ``timestamp`` (UTC), and one ``feedback_logs`` row.

>>> predictions = read_predictions(store_url, artifact_url, "flights")  # doctest: +SKIP
>>> labelled = join_feedback(predictions, read_feedback(store_url, artifact_url, "flights"))  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import FeedbackError
from ctloop.serve.batch_log import BatchLogger
from ctloop.serve.prediction_log import ArtifactWriter, read_batches
from ctloop.store.operations import When, add_feedback_log, feedback_logs, to_utc

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.store.operations_records import LogBatchRecord

__all__ = [
    "FEEDBACK_COLUMNS",
    "FeedbackLogger",
    "ingest_feedback_file",
    "join_feedback",
    "read_feedback",
]

FEEDBACK_COLUMNS = ("request_id", "label", "timestamp")


@dataclass(frozen=True)
class _Labels:
    request_ids: list[str]
    labels: list[Any]
    timestamp: float


class FeedbackLogger(BatchLogger):
    """Log ground-truth labels in batches, from a background thread; the same queueing,
    retries and counters as :class:`~ctloop.serve.prediction_log.PredictionLogger`.

    >>> with FeedbackLogger(store_url, artifact_url, "flights") as feedback:  # doctest: +SKIP
    ...     feedback.log(["r1", "r2"], [1, 0], time.time())
    """

    def __init__(
        self,
        store_url: str,
        artifact_url: str,
        model: str | None = None,
        *,
        flush_rows: int = 1000,
        flush_seconds: float = 5.0,
        max_queue_rows: int = 100_000,
        max_attempts: int = 3,
        retry_seconds: float = 0.5,
        artifact_options: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self._writer = ArtifactWriter(store_url, artifact_url, artifact_options)
        super().__init__(
            flush_rows=flush_rows,
            flush_seconds=flush_seconds,
            max_queue_rows=max_queue_rows,
            max_attempts=max_attempts,
            retry_seconds=retry_seconds,
            thread_name=f"ctloop-feedback-log-{model or 'any'}",
        )

    def log(self, request_ids: list[str], labels: list[Any], timestamp: float) -> None:
        """Queue the ``labels`` of ``request_ids`` (same length), stamped ``timestamp``
        (seconds since the epoch). Never blocks and never raises for the store."""
        if len(request_ids) != len(labels):
            raise FeedbackError(
                f"feedback has {len(request_ids)} request ids but {len(labels)} labels; "
                "send one label per request id"
            )
        self.append(_Labels(list(request_ids), list(labels), timestamp), rows=len(labels))

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write everything queued, stop the thread, remove the staging folder."""
        done = super().close(timeout)
        if done:
            self._writer.cleanup()
        return done

    def write(self, items: Sequence[Any]) -> None:
        """Store the queued labels as one batch."""
        import pandas as pd

        frames = [
            _feedback_frame(item.request_ids, item.labels, [item.timestamp] * len(item.labels))
            for item in items
        ]
        _store(self._writer, self.model, pd.concat(frames, ignore_index=True))


def _feedback_frame(
    request_ids: Sequence[Any], labels: Sequence[Any], timestamps: Sequence[Any]
) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        {
            "request_id": pd.array([str(r) for r in request_ids], dtype="string"),
            "label": list(labels),
            "timestamp": pd.to_datetime(list(timestamps), unit="s", utc=True).as_unit("us"),
        }
    )


def _store(writer: ArtifactWriter, model: str | None, frame: pd.DataFrame) -> LogBatchRecord:
    artifact_id = writer.save(frame)
    stamps = frame["timestamp"]
    return add_feedback_log(
        writer.store_url,
        model=model,
        artifact_id=artifact_id,
        rows=len(frame),
        first_at=stamps.min().to_pydatetime(),
        last_at=stamps.max().to_pydatetime(),
    )


def read_feedback(
    store_url: str,
    artifact_url: str,
    model: str | None = None,
    start: When | None = None,
    end: When | None = None,
    *,
    artifact_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Labels stamped within ``[start, end]``: those logged for ``model`` and those
    logged without a model, oldest first (columns ``request_id``, ``label``,
    ``timestamp``)."""
    batches = feedback_logs(store_url, model, start, end)
    return read_batches(
        store_url, artifact_url, batches, start, end, FEEDBACK_COLUMNS, artifact_options
    )


def join_feedback(
    predictions: pd.DataFrame, feedback: pd.DataFrame, *, how: str = "inner"
) -> pd.DataFrame:
    """``predictions`` with the ``label`` of each request id (the latest label wins when
    one was sent twice) and its ``label_timestamp``; ``how="left"`` keeps unlabelled
    predictions (their label is missing).

    >>> join_feedback(predictions, feedback)[["prediction", "label"]]  # doctest: +SKIP
    """
    latest = (
        feedback.sort_values("timestamp", kind="stable")
        .drop_duplicates("request_id", keep="last")[["request_id", "label", "timestamp"]]
        .rename(columns={"timestamp": "label_timestamp"})
    )
    left = predictions.drop(columns=["label", "label_timestamp"], errors="ignore")
    keys = left["request_id"].astype("string")
    latest = latest.assign(request_id=latest["request_id"].astype("string"))
    joined = left.assign(request_id=keys).merge(latest, on="request_id", how=how)
    return joined.reset_index(drop=True)


def ingest_feedback_file(
    store_url: str,
    artifact_url: str,
    path: str | Path,
    model: str | None = None,
    id_column: str = "request_id",
    label_column: str = "label",
    *,
    timestamp_column: str = "timestamp",
    artifact_options: dict[str, Any] | None = None,
) -> LogBatchRecord:
    """Store the labels of a CSV, Parquet or JSON-lines file as one feedback batch.

    Rows are stamped with ``timestamp_column`` when the file has it (epoch seconds or
    dates), else with the time of ingestion.

    >>> ingest_feedback_file(store_url, artifact_url, "labels.csv", model="flights").rows  # doctest: +SKIP
    500
    """
    data = _read_table(Path(path))
    missing = [c for c in (id_column, label_column) if c not in data.columns]
    if missing:
        raise FeedbackError(
            f"feedback file {path} has no column {missing[0]!r} (it has "
            f"{', '.join(map(str, data.columns))}); name the columns with --id-column "
            "and --label-column"
        )
    if data.empty:
        raise FeedbackError(f"feedback file {path} has no rows; nothing to ingest")
    frame = _feedback_frame(data[id_column], data[label_column], _stamps(data, timestamp_column))
    writer = ArtifactWriter(store_url, artifact_url, artifact_options)
    try:
        return _store(writer, model, frame)
    finally:
        writer.cleanup()


def _stamps(data: pd.DataFrame, column: str) -> list[float]:
    import pandas as pd

    if column not in data.columns:
        return [time.time()] * len(data)
    values = data[column]
    if pd.api.types.is_numeric_dtype(values):
        return [float(v) for v in values]
    return [to_utc(t.to_pydatetime()).timestamp() for t in pd.to_datetime(values, utc=True)]


def _read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise FeedbackError(f"feedback file {path} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return pd.read_json(path, lines=suffix != ".json")
    if suffix in (".csv", ".txt"):
        return pd.read_csv(path)
    raise FeedbackError(
        f"feedback file {path} has the unknown suffix {suffix!r}; use .csv, .parquet or .jsonl"
    )
