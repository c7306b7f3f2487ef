"""Feedback: the ground-truth labels that arrive after a prediction, joined to it by
request id.

Labels come one request at a time (:class:`FeedbackLogger`, batched in the background
like predictions) or as a file (:func:`ingest_feedback_file`, ``ctloop feedback ingest``).
Each batch is a Parquet ``Dataset`` artifact with the columns ``request_id``, ``label``
and ``timestamp`` (UTC), and one ``feedback_logs`` row.

The server checks each label against the type the model was trained on
(:func:`label_type`, :func:`check_labels`) before it answers, so a wrong one is the
client's 422, not a batch that fails later. Labels the store still will not take are
kept in ``dead-letter/<model>/feedback-<UTC time>-<id>.jsonl`` of the artifact store, a
file that ``ctloop feedback ingest`` reads back.

Reading the labels back, joined to their predictions, is :mod:`ctloop.artifacts._logs`::

    labelled = join_feedback(read_predictions(workspace, "flights"),
                             read_feedback(workspace, "flights"))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Unpack

from ctloop.artifacts._logs import (
    feedback_frame,
    iso_time,
)
from ctloop.errors import FeedbackError, PredictionRequestError
from ctloop.serve._batch_log import BatchOptions, Queued
from ctloop.serve._store_logger import StoreLogger

if TYPE_CHECKING:
    from ctloop.artifacts.model import Model
    from ctloop.store.workspace import Workspace

__all__ = [
    "LABEL_TYPES",
    "FeedbackLogger",
    "check_labels",
    "label_type",
    "log_feedback",
]


LABEL_TYPES = ("integer", "float", "boolean", "string")
"""The label types :func:`label_type` tells apart."""

_INT64 = (-(2**63), 2**63 - 1)
_HINTS = {
    "integer": "send a whole number",
    "float": "send a number",
    "boolean": "send true or false",
    "string": "send a string",
}


@dataclass(frozen=True)
class _Labels:
    request_ids: list[str]
    labels: list[Any]
    timestamp: float
    event_times: list[float | None] | None = None

    def event_time(self, i: int) -> float:
        """The event time of label ``i``: the one sent, else the log time."""
        sent = self.event_times[i] if self.event_times is not None else None
        return self.timestamp if sent is None else sent


class FeedbackLogger(StoreLogger):
    """Log ground-truth labels in batches, from a background thread; the same queueing,
    retries and counters as :class:`~ctloop.serve._prediction_log.PredictionLogger`.

    >>> with FeedbackLogger(workspace, "flights") as feedback:  # doctest: +SKIP
    ...     feedback.log(["r1", "r2"], [1, 0], time.time())
    """

    def __init__(
        self,
        workspace: Workspace,
        model: str | None = None,
        **options: Unpack[BatchOptions],
    ) -> None:
        super().__init__(workspace, model, "feedback-log", **options)

    def log(
        self,
        request_ids: list[str],
        labels: list[Any],
        timestamp: float,
        event_times: list[float | None] | None = None,
    ) -> bool:
        """Queue the ``labels`` of ``request_ids`` (same length), stamped ``timestamp``
        (seconds since the epoch) and each with its event time (``event_times``, the
        timestamp where ``None``); ``False`` (and counted) when a full queue dropped
        them. Never blocks and never raises for the store."""
        if event_times is not None and len(event_times) != len(labels):
            event_times = None  # a caller's slip must not lose the labels
        if len(request_ids) != len(labels):
            self.reject(len(request_ids))
            raise FeedbackError(
                f"feedback has {len(request_ids)} request ids but {len(labels)} labels; "
                "send one label per request id"
            )
        item = _Labels(list(request_ids), list(labels), timestamp, event_times)
        return self.append(item, rows=len(labels))

    def partition(self, batch: Sequence[Queued]) -> list[list[Queued]]:
        """One group per Python type of label, so that each written batch has one
        column type (a model that records no label type takes any)."""
        groups: dict[str, list[Queued]] = {}
        for item, rows in batch:
            kinds = [type(label).__name__ for label in item.labels]
            if len(set(kinds)) == 1:
                groups.setdefault(kinds[0], []).append((item, rows))
                continue
            for kind in dict.fromkeys(kinds):
                chosen = [i for i, k in enumerate(kinds) if k == kind]
                part = _Labels(
                    [item.request_ids[i] for i in chosen],
                    [item.labels[i] for i in chosen],
                    item.timestamp,
                    [item.event_time(i) for i in chosen],
                )
                groups.setdefault(kind, []).append((part, len(chosen)))
        return list(groups.values())

    def split_rows(self, item: Any) -> list[Queued]:
        """One item per label."""
        return [
            (_Labels([rid], [label], item.timestamp, [item.event_time(i)]), 1)
            for i, (rid, label) in enumerate(zip(item.request_ids, item.labels, strict=True))
        ]

    def dead_letter(self, items: Sequence[Any], error: BaseException | None) -> str:
        """Keep the labels of ``items`` in ``dead-letter/<model>/feedback-….jsonl``,
        one ``{"request_id", "label", "timestamp"}`` object a line."""
        rows = [
            {
                "request_id": rid,
                "label": label,
                "timestamp": iso_time(item.timestamp),
                "event_time": iso_time(item.event_time(i)),
            }
            for item in items
            for i, (rid, label) in enumerate(zip(item.request_ids, item.labels, strict=True))
        ]
        return self._writer.dead_letter(self.model, "feedback", rows)

    def write(self, items: Sequence[Any]) -> None:
        """Store the queued labels as one batch."""
        import pandas as pd

        frames = [
            feedback_frame(
                item.request_ids,
                item.labels,
                [item.timestamp] * len(item.labels),
                [item.event_time(i) for i in range(len(item.labels))],
            )
            for item in items
        ]
        self._writer.add_feedback(self.model, pd.concat(frames, ignore_index=True))


def label_type(model: Model) -> str | None:
    """The type of label ``model`` was trained on (one of :data:`LABEL_TYPES`): a
    regressor's is ``"float"``, a classifier's that of its classes; ``None`` when the
    model does not say (a custom model, classes of mixed types).

    >>> label_type(flights_classifier)  # classes 0 and 1  # doctest: +SKIP
    'integer'
    """
    if model.task == "regression":
        return "float"
    classes = getattr(model.estimator, "classes_", None)
    if model.task != "classification" or classes is None:
        return None
    kind = getattr(getattr(classes, "dtype", None), "kind", "O")
    if kind in "biuf":
        return {"b": "boolean", "i": "integer", "u": "integer", "f": "float"}[kind]
    kinds = {_value_type(c) for c in classes}
    return kinds.pop() if len(kinds) == 1 else None


def _value_type(value: Any) -> str | None:
    import numpy as np

    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, int | np.integer):
        return "integer"
    if isinstance(value, float | np.floating):
        return "float"
    if isinstance(value, str):
        return "string"
    return None


def check_labels(
    request_ids: Sequence[str], labels: Sequence[Any], kind: str | None, *, model: str
) -> list[Any]:
    """``labels`` as values of the label type ``kind`` of ``model`` (a whole float such
    as ``1.0`` becomes the integer ``1``, an integer becomes a float for a regressor);
    a :class:`~ctloop.errors.PredictionRequestError` (422, field ``label``) naming the
    request and the value of the first that is not one. With no ``kind``, numbers,
    booleans and strings are all taken as they are.

    >>> check_labels(["a", "b"], [1, 0.0], "integer", model="flights")
    [1, 0]
    >>> check_labels(["c"], ["yes"], "integer", model="flights")
    Traceback (most recent call last):
    ...
    ctloop.errors.PredictionRequestError: the label of request 'c' is 'yes' (str), but model 'flights' was trained on integer labels; send a whole number
    """
    return [
        _checked(rid, label, kind, model) for rid, label in zip(request_ids, labels, strict=True)
    ]


def _checked(request_id: str, label: Any, kind: str | None, model: str) -> Any:
    if label is None:
        raise _wrong_label(
            f"the label of request {request_id!r} is None (null in JSON); send the known "
            "label, or send none for this request until it is known"
        )
    if kind is None and isinstance(label, bool | int | float | str):
        return label
    converted = _convert_label(label, kind)
    if converted is not None:
        return converted
    if kind == "integer" and isinstance(label, int) and not isinstance(label, bool):
        raise _wrong_label(
            f"the label of request {request_id!r} is {label!r}, which does not fit a 64-bit "
            f"integer; model {model!r} was trained on integer labels, send one of them"
        )
    trained = f"model {model!r} was trained on {kind} labels" if kind else "labels are"
    hint = _HINTS.get(kind or "", "send a number, string or boolean")
    raise _wrong_label(
        f"the label of request {request_id!r} is {label!r} ({type(label).__name__}), "
        f"but {trained}; {hint}"
    )


def _convert_label(label: Any, kind: str | None) -> Any:
    """``label`` as a value of ``kind``, or ``None`` when it is not one."""
    if kind == "boolean":
        return label if isinstance(label, bool) else None
    if kind == "string":
        return label if isinstance(label, str) else None
    if isinstance(label, bool) or not isinstance(label, int | float):
        return None
    if kind == "float":
        try:
            return float(label)
        except OverflowError:
            return None
    if kind == "integer":
        if isinstance(label, float):
            # a JSON integer past 64 bits is read as the float nearest it, which may be
            # exactly ±2**63: such a float is no trustworthy integer
            if not label.is_integer() or not -(2.0**63) < label < 2.0**63:
                return None
            label = int(label)
        return label if _INT64[0] <= label <= _INT64[1] else None
    return None


def _wrong_label(message: str) -> PredictionRequestError:
    return PredictionRequestError(message, status=422, field="label")


def log_feedback(
    logger: FeedbackLogger | None,
    model: Model,
    model_name: str,
    request_ids: list[str],
    labels: list[Any],
    timestamp: float,
    event_times: list[float | None] | None = None,
) -> bool:
    """What ``POST /feedback`` does with parsed labels: check them against ``model``'s
    label type (a wrong one raises the 422 and counts the request's rows as rejected),
    then queue them with ``logger`` (each with its event time); whether they were
    queued (``False`` when logging is off or the queue is full)."""
    try:
        labels = check_labels(request_ids, labels, label_type(model), model=model_name)
    except PredictionRequestError:
        if logger is not None:
            logger.reject(len(request_ids))
        raise
    return logger is not None and logger.log(request_ids, labels, timestamp, event_times)
