"""Logging served predictions as Parquet batches, and reading them back by time window.

:class:`PredictionLogger` queues each request's rows in memory and writes them from a
background thread: one ``Dataset`` artifact (``data.parquet``) per batch and one
``prediction_logs`` row naming it. A batch holds the columns ``request_id``,
``timestamp`` (UTC, when it was logged), ``event_time`` (UTC, the time the client said
the row is about, else the timestamp), ``model_version``, ``deployment``, ``latency_ms``
(how long the server took to answer the row's request, from routing to predictions;
every row of a request has its request's), every feature column, and ``prediction``. Logging never blocks a request and never raises: a full queue drops rows
(counted in ``dropped``), a failing store is counted in ``errors``, and rows the store
will not take after retries are kept, one JSON object a line, in a dead-letter file of
the artifact store: ``dead-letter/<model>/predictions-<UTC time>-<id>.jsonl``.

>>> logger = PredictionLogger(workspace, "flights")  # doctest: +SKIP
>>> logger.log(3, "flights", ["r1"], frame, np.array([0.82]), time.time())  # doctest: +SKIP
>>> logger.close()  # doctest: +SKIP
>>> read_predictions(workspace, "flights").prediction.tolist()  # doctest: +SKIP
[0.82]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Unpack

from ctloop.artifacts._logs import BASE_COLUMNS, iso_time
from ctloop.errors import ServingError
from ctloop.serve._batch_log import BatchOptions, Queued
from ctloop.serve._store_logger import StoreLogger
from ctloop.store._operations import to_utc

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ctloop.store.workspace import Workspace

__all__ = ["FrameRows", "PendingRows", "PredictionLogger"]


@dataclass(frozen=True)
class _Logged:
    version: int
    deployment: str | None
    request_ids: list[str]
    frame: pd.DataFrame | PendingRows | FrameRows
    predictions: np.ndarray
    timestamp: float
    event_times: tuple[float | None, ...] | None = None
    latency_ms: float | None = None

    def event_time_list(self) -> list[float]:
        """Each row's event time: the one sent, else the log time."""
        sent = self.event_times or (None,) * len(self.request_ids)
        return [self.timestamp if t is None else t for t in sent]


class PredictionLogger(StoreLogger):
    """Log served predictions of ``model`` in batches, from a background thread.

    A batch is written when ``flush_rows`` rows wait or ``flush_seconds`` have passed;
    at most ``max_queue_rows`` rows wait in memory (more are dropped and counted);
    a failing write is retried ``max_attempts`` times, then split so that the rows the
    store takes are written and the others kept in a dead-letter file (see
    :class:`~ctloop.serve._batch_log.BatchLogger`).

    >>> with PredictionLogger(workspace, "flights") as logger:  # doctest: +SKIP
    ...     logger.log(3, "flights", ["r1", "r2"], frame, predictions, time.time())
    >>> logger.logged_rows, logger.dropped, logger.errors  # doctest: +SKIP
    (2, 0, 0)
    """

    def __init__(
        self,
        workspace: Workspace,
        model: str,
        **options: Unpack[BatchOptions],
    ) -> None:
        super().__init__(workspace, model, "prediction-log", **options)
        self.model: str = model  # always named here (the feedback log may take any)

    def log(
        self,
        version: int,
        deployment: str | None,
        request_ids: list[str],
        frame: pd.DataFrame | PendingRows | FrameRows,
        predictions: np.ndarray,
        timestamp: float,
        *,
        event_times: tuple[float | None, ...] | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """Queue one request's rows: ``frame`` (the model's input, one row per id, not
        to be changed afterwards: a frame, :class:`FrameRows` of a batch's frame, or
        :class:`PendingRows` to prepare when written) and
        its ``predictions``, stamped ``timestamp`` (seconds since the epoch) and each
        with its event time (``event_times``; the timestamp where ``None``) and the
        request's ``latency_ms`` (missing in the log where ``None``). Never
        blocks and never raises for the store; inputs of different lengths (a caller's
        bug) raise :class:`~ctloop.errors.ServingError`."""
        rows = len(request_ids)
        if event_times is not None and len(event_times) != rows:
            event_times = None
        if len(frame) != rows or len(predictions) != rows:
            self.reject(rows)
            raise ServingError(
                f"prediction log of model {self.model!r} got {rows} request ids, "
                f"{len(frame)} input rows and {len(predictions)} predictions; "
                "pass one of each per request"
            )
        item = _Logged(
            version, deployment, request_ids, frame, predictions, timestamp, event_times, latency_ms
        )
        self.append(item, rows=rows)

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
        frame = _batch_frame(logged)
        artifact_id = self._writer.save(frame)
        events = [t for item in logged for t in item.event_time_list()]
        self._writer.workspace.logs.add_predictions(
            model=self.model,
            version=version,
            deployment=deployment,
            artifact_id=artifact_id,
            rows=len(frame),
            first_at=min(item.timestamp for item in logged),
            last_at=max(item.timestamp for item in logged),
            first_event_at=min(events),
            last_event_at=max(events),
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


@dataclass(frozen=True)
class FrameRows:
    """Rows ``start`` to ``stop`` of ``frame``, the input of a batch of requests, cut only
    when written: the requests of one model call share its frame, and the log's writer
    takes a run of them as one slice, so no request pays for a frame of its own.

    >>> import pandas as pd
    >>> part = FrameRows(pd.DataFrame({"x": [1, 2, 3]}), 1, 3)
    >>> len(part), part.rows()["x"].tolist()
    (2, [2, 3])
    """

    frame: pd.DataFrame
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    def rows(self) -> pd.DataFrame:
        """The rows, as a frame."""
        return self.frame.iloc[self.start : self.stop]

    @classmethod
    def split(cls, frame: pd.DataFrame, sizes: Sequence[int]) -> list[FrameRows]:
        """``frame`` as consecutive parts of ``sizes`` rows."""
        parts, start = [], 0
        for size in sizes:
            parts.append(cls(frame, start, start + size))
            start += size
        return parts


def _row_of(item: _Logged, i: int) -> _Logged:
    frame = item.frame
    part: pd.DataFrame | PendingRows | FrameRows
    if isinstance(frame, PendingRows):
        part = PendingRows(frame.prepare, frame.records[i : i + 1])
    elif isinstance(frame, FrameRows):
        part = FrameRows(frame.frame, frame.start + i, frame.start + i + 1)
    else:
        part = frame.iloc[i : i + 1]
    return _Logged(
        item.version,
        item.deployment,
        item.request_ids[i : i + 1],
        part,
        item.predictions[i : i + 1],
        item.timestamp,
        item.event_times[i : i + 1] if item.event_times is not None else None,
        item.latency_ms,
    )


def _records(item: _Logged) -> list[dict[str, Any]]:
    """The rows of ``item`` as plain records (the dead-letter form): the base columns,
    the inputs as the client sent them (or as the model read them) and the prediction."""
    frame = item.frame
    if isinstance(frame, PendingRows):
        inputs = frame.records
    else:
        rows = frame.rows() if isinstance(frame, FrameRows) else frame
        inputs = rows.reset_index(drop=True).to_dict("records")
    base = {
        "model_version": item.version,
        "deployment": item.deployment,
        "latency_ms": item.latency_ms,
    }
    rows = zip(item.request_ids, inputs, item.predictions, item.event_time_list(), strict=True)
    return [
        {
            "request_id": rid,
            "timestamp": iso_time(item.timestamp),
            "event_time": iso_time(event_time),
            **base,
            **{k: v for k, v in row.items() if k not in BASE_COLUMNS},
            "prediction": _plain_prediction(prediction),
        }
        for rid, row, prediction, event_time in rows
    ]


def _plain_prediction(value: Any) -> Any:
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else value


def _batch_frame(logged: Sequence[_Logged]) -> pd.DataFrame:
    """One frame of every row of ``logged`` (in order): the base columns, the features
    and the prediction, each column built once for the whole batch (a frame per request
    would cost about a millisecond each)."""
    import pandas as pd

    features = pd.concat(_input_frames(logged), ignore_index=True)
    features = features.drop(columns=list(BASE_COLUMNS), errors="ignore")
    return pd.concat([_base_columns(logged), features], axis=1).assign(
        prediction=_predictions(logged)
    )


def _base_columns(logged: Sequence[_Logged]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    counts = [len(item.request_ids) for item in logged]
    stamps = pd.Series([to_utc(i.timestamp) for i in logged], dtype="datetime64[us, UTC]")
    events = [t for item in logged for t in item.event_time_list()]
    latencies = [np.nan if item.latency_ms is None else item.latency_ms for item in logged]
    return pd.DataFrame(
        {
            "request_id": pd.array([r for item in logged for r in item.request_ids], "string"),
            "timestamp": stamps.repeat(counts).reset_index(drop=True),
            "event_time": pd.Series(pd.to_datetime(events, unit="s", utc=True).as_unit("us")),
            "model_version": np.repeat(np.array([i.version for i in logged], "int64"), counts),
            "deployment": pd.array(np.repeat([i.deployment for i in logged], counts), "string"),
            "latency_ms": np.repeat(np.array(latencies, "float64"), counts),
        }
    )


def _predictions(logged: Sequence[_Logged]) -> Any:
    """The batch's predictions: one array of values, or one value (an array) per row of
    a model that answers several values a row."""
    import numpy as np

    if all(item.predictions.ndim == 1 for item in logged):
        return np.concatenate([item.predictions for item in logged])
    return [row for item in logged for row in item.predictions]


def _input_frames(logged: Sequence[_Logged]) -> list[pd.DataFrame]:
    """The input frames of ``logged``, in order, to concatenate: a run of pending rows of
    one ``prepare`` becomes one frame (one frame for the whole run costs about what one
    for a single row does), and a run of consecutive parts of one frame one slice."""
    frames: list[pd.DataFrame] = []
    run: list[Any] = []
    for item in logged:
        frame = item.frame
        if run and _continues(run[-1], frame):
            run.append(frame)
            continue
        if run:
            frames.append(_run_frame(run))
            run = []
        if isinstance(frame, PendingRows | FrameRows):
            run.append(frame)
        else:
            frames.append(frame)
    if run:
        frames.append(_run_frame(run))
    return frames


def _continues(last: PendingRows | FrameRows, frame: Any) -> bool:
    if isinstance(last, PendingRows):  # bound methods of one model compare equal
        return isinstance(frame, PendingRows) and frame.prepare == last.prepare
    return isinstance(frame, FrameRows) and frame.frame is last.frame and frame.start == last.stop


def _run_frame(run: list[Any]) -> pd.DataFrame:
    first = run[0]
    if isinstance(first, FrameRows):
        whole = first.start == 0 and run[-1].stop == len(first.frame)
        return first.frame if whole else first.frame.iloc[first.start : run[-1].stop]
    return first.prepare([r for p in run for r in p.records])
