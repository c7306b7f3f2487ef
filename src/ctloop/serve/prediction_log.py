"""Logging served predictions as Parquet batches, and reading them back by time window.

:class:`PredictionLogger` queues each request's rows in memory and writes them from a
background thread: one ``Dataset`` artifact (``data.parquet``) per batch and one
``prediction_logs`` row naming it. A batch holds the columns ``request_id``,
``timestamp`` (UTC), ``model_version``, ``deployment``, every feature column, and
``prediction``. Logging never blocks a request and never raises: a full queue drops rows
(counted in ``dropped``), a failing store is counted in ``errors``, and rows the store
will not take after retries are kept, one JSON object a line, in a dead-letter file of
the artifact store: ``dead-letter/<model>/predictions-<UTC time>-<id>.jsonl``.

>>> logger = PredictionLogger(store_url, artifact_url, "flights")  # doctest: +SKIP
>>> logger.log(3, "flights", ["r1"], frame, np.array([0.82]), time.time())  # doctest: +SKIP
>>> logger.close()  # doctest: +SKIP
>>> read_predictions(store_url, artifact_url, "flights").prediction.tolist()  # doctest: +SKIP
[0.82]
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import ServingError
from ctloop.serve.batch_log import BatchLogger, Queued
from ctloop.store.operations import When, add_prediction_log, prediction_logs, to_utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ctloop.store import ArtifactStore
    from ctloop.store.operations_records import LogBatchRecord

__all__ = ["BASE_COLUMNS", "PredictionLogger", "read_predictions"]

#: the columns every prediction batch has besides the features and ``prediction``
BASE_COLUMNS = ("request_id", "timestamp", "model_version", "deployment")


@dataclass(frozen=True)
class _Logged:
    version: int
    deployment: str | None
    request_ids: list[str]
    frame: pd.DataFrame | PendingRows
    predictions: np.ndarray
    timestamp: float


class ArtifactWriter:
    """Stores DataFrames as ``Dataset`` artifacts in the project's stores, opened on
    first use (so that a bad URL is a write error, not a constructor error)."""

    def __init__(
        self, store_url: str, artifact_url: str, artifact_options: dict[str, Any] | None
    ) -> None:
        self.store_url = store_url
        self.artifact_url = artifact_url
        self.artifact_options = artifact_options
        self._staging = Path(tempfile.mkdtemp(prefix="ctloop-log-"))
        self._artifacts: ArtifactStore | None = None

    def save(self, frame: pd.DataFrame) -> str:
        """Store ``frame``; returns the registered artifact's id."""
        from ctloop.artifacts import save_value
        from ctloop.store import open_artifact_store, open_metadata_store

        if self._artifacts is None:
            self._artifacts = open_artifact_store(self.artifact_url, self.artifact_options)
        record = save_value(frame, self._artifacts, staging_root=self._staging)
        open_metadata_store(self.store_url).put_artifacts([record])
        return record.id

    def dead_letter(self, model: str | None, kind: str, rows: Sequence[Mapping[str, Any]]) -> str:
        """Keep ``rows`` (JSON-able records; other values become their ``str``) in a new
        dead-letter file ``dead-letter/<model>/<kind>-<UTC time>-<id>.jsonl``, written
        atomically by the artifact store; returns its URL."""
        import orjson

        from ctloop.store import open_artifact_store

        if self._artifacts is None:
            self._artifacts = open_artifact_store(self.artifact_url, self.artifact_options)
        folder = re.sub(r"[^A-Za-z0-9._-]", "_", model or "any").lstrip(".") or "any"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        key = f"dead-letter/{folder}/{kind}-{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
        option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
        data = b"".join(orjson.dumps(dict(row), default=_plain, option=option) for row in rows)
        return self._artifacts.write_object(key, data)

    def cleanup(self) -> None:
        """Remove the staging folder."""
        shutil.rmtree(self._staging, ignore_errors=True)


def _plain(value: Any) -> Any:
    """A JSON form of what orjson does not know: numpy scalars as Python values,
    timestamps in ISO 8601, anything else as its ``str``."""
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    item = getattr(value, "item", None)
    if callable(item):
        try:
            plain = item()
        except (TypeError, ValueError):
            return str(value)
        if isinstance(plain, bool | int | float | str) or plain is None:
            return plain
    return str(value)


def iso_time(timestamp: float) -> str:
    """Seconds since the epoch as an ISO 8601 UTC time (what dead-letter rows carry)."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


class PredictionLogger(BatchLogger):
    """Log served predictions of ``model`` in batches, from a background thread.

    A batch is written when ``flush_rows`` rows wait or ``flush_seconds`` have passed;
    at most ``max_queue_rows`` rows wait in memory (more are dropped and counted);
    a failing write is retried ``max_attempts`` times, then split so that the rows the
    store takes are written and the others kept in a dead-letter file (see
    :class:`~ctloop.serve.batch_log.BatchLogger`).

    >>> with PredictionLogger(store_url, artifact_url, "flights") as logger:  # doctest: +SKIP
    ...     logger.log(3, "flights", ["r1", "r2"], frame, predictions, time.time())
    >>> logger.logged_rows, logger.dropped, logger.errors  # doctest: +SKIP
    (2, 0, 0)
    """

    def __init__(
        self,
        store_url: str,
        artifact_url: str,
        model: str,
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
            thread_name=f"ctloop-prediction-log-{model}",
        )

    def log(
        self,
        version: int,
        deployment: str | None,
        request_ids: list[str],
        frame: pd.DataFrame | PendingRows,
        predictions: np.ndarray,
        timestamp: float,
    ) -> None:
        """Queue one request's rows: ``frame`` (the model's input, one row per id, not
        to be changed afterwards, or :class:`PendingRows` to prepare when written) and its ``predictions``, stamped ``timestamp``
        (seconds since the epoch). Never blocks and never raises for the store; inputs
        of different lengths (a caller's bug) raise :class:`~ctloop.errors.ServingError`."""
        rows = len(request_ids)
        if len(frame) != rows or len(predictions) != rows:
            self.reject(rows)
            raise ServingError(
                f"prediction log of model {self.model!r} got {rows} request ids, "
                f"{len(frame)} input rows and {len(predictions)} predictions; "
                "pass one of each per request"
            )
        item = _Logged(version, deployment, request_ids, frame, predictions, timestamp)
        self.append(item, rows=rows)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write everything queued, stop the thread, remove the staging folder."""
        done = super().close(timeout)
        if done:
            self._writer.cleanup()
        return done

    def partition(self, batch: Sequence[Queued]) -> list[list[Queued]]:
        """One group per (model version, deployment): each is a batch of its own."""
        groups: dict[tuple[int, str | None], list[Queued]] = {}
        for queued in batch:
            item = queued[0]
            groups.setdefault((item.version, item.deployment), []).append(queued)
        return list(groups.values())

    def write(self, items: Sequence[Any]) -> None:
        """Store the items, all of one (model version, deployment), as one batch."""
        first = items[0]
        self._write_group(first.version, first.deployment, list(items))

    def split_rows(self, item: Any) -> list[Queued]:
        """One item per row of ``item``."""
        return [(_row_of(item, i), 1) for i in range(len(item.request_ids))]

    def dead_letter(self, items: Sequence[Any], error: BaseException | None) -> str:
        """Keep the rows of ``items`` in ``dead-letter/<model>/predictions-….jsonl``."""
        rows = [row for item in items for row in _records(item)]
        return self._writer.dead_letter(self.model, "predictions", rows)

    def _write_group(self, version: int, deployment: str | None, logged: list[_Logged]) -> None:
        import pandas as pd

        inputs = _input_frames(logged)
        frame = pd.concat(
            [_rows(item, features) for item, features in zip(logged, inputs, strict=True)],
            ignore_index=True,
        )
        artifact_id = self._writer.save(frame)
        add_prediction_log(
            self._writer.store_url,
            model=self.model,
            version=version,
            deployment=deployment,
            artifact_id=artifact_id,
            rows=len(frame),
            first_at=min(item.timestamp for item in logged),
            last_at=max(item.timestamp for item in logged),
        )


@dataclass(frozen=True)
class PendingRows:
    """A request's input rows not yet made into the model's input frame: plain records
    and the ``prepare`` that makes them one. The log's writer thread prepares them, so a
    request answered without a DataFrame does not build one to be logged.

    >>> len(PendingRows(lambda rows: rows, [{"x": 1}, {"x": 2}]))
    2
    """

    prepare: Callable[[list[dict[str, Any]]], pd.DataFrame]
    records: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.records)


def _row_of(item: _Logged, i: int) -> _Logged:
    frame = item.frame
    if isinstance(frame, PendingRows):
        part: pd.DataFrame | PendingRows = PendingRows(frame.prepare, frame.records[i : i + 1])
    else:
        part = frame.iloc[i : i + 1]
    return _Logged(
        item.version,
        item.deployment,
        item.request_ids[i : i + 1],
        part,
        item.predictions[i : i + 1],
        item.timestamp,
    )


def _records(item: _Logged) -> list[dict[str, Any]]:
    """The rows of ``item`` as plain records (the dead-letter form): the base columns,
    the inputs as the client sent them (or as the model read them) and the prediction."""
    frame = item.frame
    if isinstance(frame, PendingRows):
        inputs = frame.records
    else:
        inputs = frame.reset_index(drop=True).to_dict("records")
    base = {
        "timestamp": iso_time(item.timestamp),
        "model_version": item.version,
        "deployment": item.deployment,
    }
    return [
        {
            "request_id": rid,
            **base,
            **{k: v for k, v in row.items() if k not in BASE_COLUMNS},
            "prediction": _plain_prediction(prediction),
        }
        for rid, row, prediction in zip(item.request_ids, inputs, item.predictions, strict=True)
    ]


def _plain_prediction(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def _input_frames(logged: Sequence[_Logged]) -> list[pd.DataFrame]:
    """Each item's input frame; pending rows of one ``prepare`` are prepared together
    (one frame for the whole batch costs about what one for a single row does)."""
    from ctloop.serve.batching import split_rows

    frames: list[Any] = [item.frame for item in logged]
    by_prepare: dict[Any, list[int]] = {}  # bound methods of one model compare equal
    for i, frame in enumerate(frames):
        if isinstance(frame, PendingRows):
            by_prepare.setdefault(frame.prepare, []).append(i)
    for positions in by_prepare.values():
        pending = [frames[i] for i in positions]
        whole = pending[0].prepare([r for p in pending for r in p.records])
        for i, part in zip(positions, split_rows(whole, [len(p) for p in pending]), strict=True):
            frames[i] = part
    return frames


def _rows(item: _Logged, features: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    count = len(item.request_ids)
    stamp = pd.Timestamp(to_utc(item.timestamp))
    base = pd.DataFrame(
        {
            "request_id": pd.array(item.request_ids, dtype="string"),
            "timestamp": pd.Series([stamp] * count, dtype="datetime64[us, UTC]"),
            "model_version": pd.array([item.version] * count, dtype="int64"),
            "deployment": pd.array([item.deployment] * count, dtype="string"),
        }
    )
    features = features.reset_index(drop=True).drop(columns=list(BASE_COLUMNS), errors="ignore")
    predictions = item.predictions
    values = list(predictions) if predictions.ndim > 1 else predictions
    return pd.concat([base, features], axis=1).assign(prediction=values)


def read_predictions(
    store_url: str,
    artifact_url: str,
    model: str,
    start: When | None = None,
    end: When | None = None,
    version: int | None = None,
    *,
    artifact_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Logged predictions of ``model`` stamped within ``[start, end]`` (datetimes or
    epoch seconds; open-ended when ``None``), of one ``version`` if given, oldest first.

    >>> read_predictions(store_url, artifact_url, "flights", start=time.time() - 3600)  # doctest: +SKIP
    """
    batches = prediction_logs(store_url, model, start, end, version)
    return read_batches(
        store_url, artifact_url, batches, start, end, BASE_COLUMNS, artifact_options
    )


def read_batches(
    store_url: str,
    artifact_url: str,
    batches: list[LogBatchRecord],
    start: When | None,
    end: When | None,
    columns: Sequence[str],
    artifact_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The rows of ``batches`` stamped within ``[start, end]``, in one frame (empty, with
    ``columns``, when there are none)."""
    import pandas as pd

    from ctloop.artifacts import load_value
    from ctloop.store import open_artifact_store, open_metadata_store

    if not batches:
        return pd.DataFrame(columns=list(columns))
    metadata = open_metadata_store(store_url)
    artifacts = open_artifact_store(artifact_url, artifact_options)
    with tempfile.TemporaryDirectory(prefix="ctloop-read-") as cache:
        records = metadata.list_artifacts([b.artifact_id for b in batches])
        by_id = {r.id: r for r in records}
        frames = [
            load_value(by_id[b.artifact_id], artifacts, cache_dir=Path(cache)) for b in batches
        ]
    frame = pd.concat(frames, ignore_index=True)
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame["timestamp"] >= pd.Timestamp(to_utc(start))
    if end is not None:
        keep &= frame["timestamp"] <= pd.Timestamp(to_utc(end))
    return frame[keep].sort_values("timestamp", kind="stable").reset_index(drop=True)
