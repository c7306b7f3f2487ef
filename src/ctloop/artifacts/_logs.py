"""The prediction and feedback logs as tables: writing logged rows into a workspace,
and reading them back by time window.

A prediction batch holds the columns ``request_id``, ``timestamp`` (UTC, when the row
was logged), ``event_time`` (UTC, the time the row is about: the client's, else the
log time), ``model_version``, ``deployment``, ``latency_ms`` (the time the server took
to answer the row's request), every feature column, and ``prediction``; a feedback
batch ``request_id``, ``label``, ``timestamp`` and ``event_time``. Batches logged before
event times were kept have no ``event_time``; reading fills it with the log time.
Batches logged before latencies were kept have no ``latency_ms``; reading leaves it
missing (NaN). Each batch is a Parquet ``Dataset``
artifact indexed by the workspace's :class:`~ctloop.store._operations.LogStore`. The
prediction server writes them (in the background, see :mod:`ctloop.serve`); monitoring
and canary judging read them.

>>> from ctloop.store.workspace import Workspace
>>> workspace = Workspace.in_memory()
>>> writer = LogWriter(workspace)
>>> labels = feedback_frame(["r1", "r2"], [1, 0], [1767225600.0, 1767225601.0])
>>> writer.add_feedback("flights", labels).rows
2
>>> read_feedback(workspace, "flights").label.tolist()
[1, 0]
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import FeedbackError
from ctloop.store._operations import When, to_utc

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.store._operations_records import LogBatchRecord
    from ctloop.store.workspace import Workspace

__all__ = [
    "BASE_COLUMNS",
    "FEEDBACK_COLUMNS",
    "LogWriter",
    "feedback_frame",
    "ingest_feedback_file",
    "iso_time",
    "join_feedback",
    "read_batches",
    "read_feedback",
    "read_predictions",
]

#: the columns every prediction batch has besides the features and ``prediction``
BASE_COLUMNS = (
    "request_id",
    "timestamp",
    "event_time",
    "model_version",
    "deployment",
    "latency_ms",
)
#: the columns of a feedback batch
FEEDBACK_COLUMNS = ("request_id", "label", "timestamp", "event_time")


class LogWriter:
    """Stores logged rows in ``workspace``: a DataFrame as a registered ``Dataset``
    artifact (:meth:`save`), rows the store will not take as a dead-letter file.

    >>> import pandas as pd
    >>> from ctloop.store.workspace import Workspace
    >>> writer = LogWriter(Workspace.in_memory())
    >>> len(writer.save(pd.DataFrame({"request_id": ["r1"], "label": [1]})))
    32
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._staging = Path(tempfile.mkdtemp(prefix="ctloop-log-"))

    def save(self, frame: pd.DataFrame) -> str:
        """Store ``frame``; returns the registered artifact's id."""
        from ctloop.artifacts._io import save_value

        record = save_value(frame, self.workspace.artifacts, staging_root=self._staging)
        self.workspace.metadata.put_artifacts([record])
        return record.id

    def add_feedback(self, model: str | None, frame: pd.DataFrame) -> LogBatchRecord:
        """Store a frame of labels (:func:`feedback_frame`) as one feedback batch."""
        artifact_id = self.save(frame)
        stamps = frame["timestamp"]
        events = frame["event_time"] if "event_time" in frame.columns else stamps
        return self.workspace.logs.add_feedback(
            model=model,
            artifact_id=artifact_id,
            rows=len(frame),
            first_at=stamps.min().to_pydatetime(),
            last_at=stamps.max().to_pydatetime(),
            first_event_at=events.min().to_pydatetime(),
            last_event_at=events.max().to_pydatetime(),
        )

    def dead_letter(self, model: str | None, kind: str, rows: Sequence[Mapping[str, Any]]) -> str:
        """Keep ``rows`` (JSON-able records; other values become their ``str``) in a new
        dead-letter file ``dead-letter/<model>/<kind>-<UTC time>-<id>.jsonl``, written
        atomically by the artifact store; returns its URL."""
        import orjson

        folder = re.sub(r"[^A-Za-z0-9._-]", "_", model or "any").lstrip(".") or "any"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        key = f"dead-letter/{folder}/{kind}-{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
        option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE
        data = b"".join(orjson.dumps(dict(row), default=_plain, option=option) for row in rows)
        return self.workspace.artifacts.write_object(key, data)

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


def feedback_frame(
    request_ids: Sequence[Any],
    labels: Sequence[Any],
    timestamps: Sequence[Any],
    event_times: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """Labels as the feedback log stores them: ``request_id`` (string), ``label``,
    ``timestamp`` and ``event_time`` (UTC, from seconds since the epoch; the event
    times default to the timestamps)."""
    import pandas as pd

    stamps = pd.to_datetime(list(timestamps), unit="s", utc=True).as_unit("us")
    events = stamps
    if event_times is not None:
        events = pd.to_datetime(list(event_times), unit="s", utc=True).as_unit("us")
    return pd.DataFrame(
        {
            "request_id": pd.array([str(r) for r in request_ids], dtype="string"),
            "label": list(labels),
            "timestamp": stamps,
            "event_time": events,
        }
    )


def read_predictions(
    workspace: Workspace,
    model: str,
    start: When | None = None,
    end: When | None = None,
    version: int | None = None,
    *,
    on: str = "timestamp",
) -> pd.DataFrame:
    """Logged predictions of ``model`` stamped within ``[start, end]`` (datetimes or
    epoch seconds; open-ended when ``None``), of one ``version`` if given, oldest first;
    ``on="event_time"`` reads the window, and orders the rows, by event time.

    >>> read_predictions(workspace, "flights", start=time.time() - 3600)  # doctest: +SKIP
    """
    batches = workspace.logs.predictions(model, start, end, version, on=on)
    return _with_latency(read_batches(workspace, batches, start, end, BASE_COLUMNS, on=on))


def _with_latency(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``latency_ms`` column (missing where batches logged none)."""
    if "latency_ms" in frame.columns:
        return frame
    position = list(frame.columns).index("deployment") + 1 if "deployment" in frame else 0
    frame = frame.copy()
    frame.insert(position, "latency_ms", float("nan"))
    return frame


def read_batches(
    workspace: Workspace,
    batches: list[LogBatchRecord],
    start: When | None,
    end: When | None,
    columns: Sequence[str],
    *,
    on: str = "timestamp",
) -> pd.DataFrame:
    """The rows of ``batches`` whose ``on`` time (``timestamp`` or ``event_time``) is
    within ``[start, end]``, in one frame (empty, with ``columns``, when there are none),
    ordered by that time, then by request id; rows logged without an event time get their
    log time as one."""
    import pandas as pd

    from ctloop.artifacts._io import load_value

    if not batches:
        return pd.DataFrame(columns=list(columns))
    with tempfile.TemporaryDirectory(prefix="ctloop-read-") as cache:
        records = workspace.metadata.list_artifacts([b.artifact_id for b in batches])
        by_id = {r.id: r for r in records}
        frames = [
            load_value(by_id[b.artifact_id], workspace.artifacts, cache_dir=Path(cache))
            for b in batches
        ]
    frame = pd.concat([_with_event_time(f) for f in frames], ignore_index=True)
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame[on] >= pd.Timestamp(to_utc(start))
    if end is not None:
        keep &= frame[on] <= pd.Timestamp(to_utc(end))
    # rows of one time in request-id order: what concurrent clients sent in whatever order
    # reads back the same every time (a seeded bootstrap or sample gives one answer)
    order = [on, "request_id"] if "request_id" in frame.columns else [on]
    return frame[keep].sort_values(order, kind="stable").reset_index(drop=True)


def _with_event_time(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with an ``event_time`` column (its log time where it had none)."""
    if "event_time" in frame.columns:
        return frame.assign(event_time=frame["event_time"].fillna(frame["timestamp"]))
    position = list(frame.columns).index("timestamp") + 1
    frame = frame.copy()
    frame.insert(position, "event_time", frame["timestamp"])
    return frame


def read_feedback(
    workspace: Workspace,
    model: str | None = None,
    start: When | None = None,
    end: When | None = None,
    *,
    on: str = "timestamp",
) -> pd.DataFrame:
    """Labels stamped within ``[start, end]``: those logged for ``model`` and those
    logged without a model, oldest first (columns ``request_id``, ``label``,
    ``timestamp``, ``event_time``); ``on="event_time"`` windows them by event time."""
    batches = workspace.logs.feedback(model, start, end, on=on)
    return read_batches(workspace, batches, start, end, FEEDBACK_COLUMNS, on=on)


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
    workspace: Workspace,
    path: str | Path,
    model: str | None = None,
    id_column: str = "request_id",
    label_column: str = "label",
    *,
    timestamp_column: str = "timestamp",
) -> LogBatchRecord:
    """Store the labels of a CSV, Parquet or JSON-lines file as one feedback batch.

    Rows are stamped with ``timestamp_column`` when the file has it (epoch seconds or
    dates), else with the time of ingestion; their event time is ``event_time`` when
    the file has that column, else the same stamp.

    >>> ingest_feedback_file(workspace, "labels.csv", model="flights").rows  # doctest: +SKIP
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
    stamps = _stamps(data, timestamp_column)
    events = _stamps(data, "event_time") if "event_time" in data.columns else stamps
    frame = feedback_frame(data[id_column], data[label_column], stamps, events)
    writer = LogWriter(workspace)
    try:
        return writer.add_feedback(model, frame)
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
