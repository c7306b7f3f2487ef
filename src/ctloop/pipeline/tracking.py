"""Tracking inside steps: ``log_metric``, ``log_metrics``, ``log_param``, ``set_tag``.

Calls are buffered in memory for the running step and written in one transaction with
the step's result (one write per step, not one per call).

>>> from ctloop import step, log_metric
>>> @step
... def train(rows: list) -> int:
...     for epoch in range(3):
...         log_metric("loss", 1.0 / (epoch + 1), step=epoch)
...     return len(rows)
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from ctloop.errors import CtloopError, ParameterError
from ctloop.store.records import MetricRecord, ParamRecord, TagRecord, utcnow


@dataclass
class Tracker:
    """The buffer of tracking calls of one running step."""

    run_id: str
    execution_id: str
    executor: str = "local"
    params: list[ParamRecord] = field(default_factory=list)
    metrics: list[MetricRecord] = field(default_factory=list)
    tags: list[TagRecord] = field(default_factory=list)


_tracker: contextvars.ContextVar[Tracker | None] = contextvars.ContextVar(
    "ctloop_tracker", default=None
)


@contextmanager
def tracking(run_id: str, execution_id: str, executor: str = "local") -> Iterator[Tracker]:
    """Collect tracking calls made while the block runs (``executor``: the run's)."""
    tracker = Tracker(run_id, execution_id, executor)
    token = _tracker.set(tracker)
    try:
        yield tracker
    finally:
        _tracker.reset(token)


def _active(call: str) -> Tracker:
    tracker = _tracker.get()
    if tracker is None:
        raise CtloopError(
            f"ctloop.{call}() was called outside a running step; call it from inside a "
            "@step function that runs in a pipeline"
        )
    return tracker


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Record a metric value of the running step (``step`` orders epochs/rounds)."""
    tracker = _active("log_metric")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"metric {key!r} must be a number, got {value!r} ({type(value).__name__})"
        ) from exc
    if math.isnan(number) and not isinstance(value, float):
        raise ParameterError(f"metric {key!r} is NaN")
    tracker.metrics.append(
        MetricRecord(
            run_id=tracker.run_id,
            key=key,
            value=number,
            step=step,
            execution_id=tracker.execution_id,
            timestamp=utcnow(),
        )
    )


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Record several metrics at once."""
    for key, value in metrics.items():
        log_metric(key, value, step=step)


def log_param(key: str, value: object) -> None:
    """Record a parameter of the running step (stored as text)."""
    tracker = _active("log_param")
    tracker.params.append(
        ParamRecord(tracker.run_id, key, str(value), execution_id=tracker.execution_id)
    )


def set_tag(key: str, value: object) -> None:
    """Tag the running step's execution."""
    tracker = _active("set_tag")
    tracker.tags.append(
        TagRecord(tracker.run_id, key, str(value), execution_id=tracker.execution_id)
    )


def current_execution() -> tuple[str, str] | None:
    """The ``(run id, execution id)`` of the step running here, or ``None`` outside a run.

    >>> current_execution() is None
    True
    """
    tracker = _tracker.get()
    return None if tracker is None else (tracker.run_id, tracker.execution_id)


def current_executor() -> str | None:
    """The executor of the run whose step is running here (``local``, ``process``,
    ``ray``), or ``None`` outside a run: steps that start work of their own follow it.

    >>> current_executor() is None
    True
    """
    tracker = _tracker.get()
    return None if tracker is None else tracker.executor
