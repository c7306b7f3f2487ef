"""Tracking inside steps: ``log_metric``, ``log_metrics``, ``log_param``, ``set_tag``.

Calls are buffered in memory for the running step and written in one transaction with
the step's result (one write per step, not one per call).

>>> from ctloop import step, log_metric
>>> @step
... def train(rows: list) -> int:
...     for epoch in range(3):
...         log_metric("loss", 1.0 / (epoch + 1), step=epoch)
...     return len(rows)

A running step reaches the run's state through :func:`current_workspace` (the workspace
the run was given, reopened in a worker process), records work it starts itself (tuning
trials) as child executions of its run with :func:`child_executions` and an artifact it
found by itself as an input with :func:`record_input`; components
that may also be called as plain functions track with :func:`track_metric`,
:func:`track_param` and :func:`track_tag`, which do nothing outside a run.
"""

from __future__ import annotations

import contextvars
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import CtloopError, ParameterError
from ctloop.store.records import (
    EventRecord,
    ExecutionRecord,
    MetricRecord,
    ParamRecord,
    TagRecord,
    new_id,
    utcnow,
)
from ctloop.store.statuses import ExecutionStatus

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = [
    "PARENT_EXECUTION_TAG",
    "ChildExecutions",
    "Tracker",
    "child_executions",
    "current_execution",
    "current_executor",
    "current_home",
    "current_workspace",
    "log_metric",
    "log_metrics",
    "log_param",
    "record_child_execution",
    "record_input",
    "set_tag",
    "track_metric",
    "track_param",
    "track_tag",
    "tracking",
    "use_workspace",
]

PARENT_EXECUTION_TAG = "ctloop.parent_execution"
"""Tag of a child execution: the id of the step execution that recorded it."""


@dataclass
class Tracker:
    """The buffer of tracking calls of one running step, and where its run keeps state:
    ``workspace`` (the run's stores) and ``home`` (its ``cache/`` and ``tmp/`` folders)."""

    run_id: str
    execution_id: str
    executor: str = "local"
    workspace: Workspace | None = None
    home: Path | None = None
    step: str = ""
    params: list[ParamRecord] = field(default_factory=list)
    metrics: list[MetricRecord] = field(default_factory=list)
    tags: list[TagRecord] = field(default_factory=list)


@dataclass(frozen=True)
class _Scope:
    """A workspace set for code that runs outside a step (:func:`use_workspace`)."""

    workspace: Workspace
    home: Path


_tracker: contextvars.ContextVar[Tracker | None] = contextvars.ContextVar(
    "ctloop_tracker", default=None
)
_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
    "ctloop_workspace_scope", default=None
)


@contextmanager
def tracking(
    run_id: str,
    execution_id: str,
    executor: str = "local",
    *,
    workspace: Workspace | None = None,
    home: Path | None = None,
    step: str = "",
) -> Iterator[Tracker]:
    """Collect tracking calls made while the block runs (``executor``: the run's;
    ``workspace``, ``home`` and ``step``: the run's stores, its home and the step's name)."""
    tracker = Tracker(run_id, execution_id, executor, workspace, home, step)
    token = _tracker.set(tracker)
    try:
        yield tracker
    finally:
        _tracker.reset(token)


@contextmanager
def use_workspace(workspace: Workspace, *, home: Path | None = None) -> Iterator[Workspace]:
    """Let steps called as plain functions (outside a run) reach ``workspace``; ``home``
    holds their ``cache/`` and ``tmp/`` folders (default: the project's, from settings).
    Inside a running step the run's workspace wins.

    >>> from ctloop.components import champion_model
    >>> with use_workspace(Workspace.open()):  # doctest: +SKIP
    ...     champion = champion_model(name="flights")
    """
    if home is None:
        from ctloop.config import Settings

        home = Settings.load().home
    token = _scope.set(_Scope(workspace, Path(home)))
    try:
        yield workspace
    finally:
        _scope.reset(token)


def _active(call: str) -> Tracker:
    tracker = _tracker.get()
    if tracker is None:
        raise CtloopError(
            f"ctloop.{call}() was called outside a running step; call it from inside a "
            "@step function that runs in a pipeline"
        )
    return tracker


def current_workspace() -> Workspace:
    """The workspace of the run whose step is running here (outside a run: the one
    :func:`use_workspace` set); raises :class:`~ctloop.errors.CtloopError` otherwise.

    >>> @step
    ... def versions(name: str) -> int:
    ...     return len(current_workspace().registry.list_versions(name))  # doctest: +SKIP
    """
    workspace: Workspace = _in_scope(
        "workspace",
        "current_workspace() was called outside a running step; call it from inside a "
        "@step function that runs in a pipeline, or wrap the call in "
        "`with ctloop.pipeline.tracking.use_workspace(Workspace.open()):`",
    )
    return workspace


def current_home() -> Path:
    """The ctloop home of the running step's run (or of :func:`use_workspace`): where
    loaded artifacts are cached (``cache/``) and files are staged (``tmp/``)."""
    home: Path = _in_scope(
        "home",
        "current_home() was called outside a running step; call it from inside a @step "
        "function that runs in a pipeline, or inside `with use_workspace(...)`",
    )
    return home


def _in_scope(name: str, outside: str) -> Any:
    """``name`` (``workspace`` or ``home``) of the running step's tracker, else of the
    :func:`use_workspace` scope; :class:`~ctloop.errors.CtloopError` ``outside`` both."""
    for holder in (_tracker.get(), _scope.get()):
        value = getattr(holder, name, None)
        if value is not None:
            return value
    raise CtloopError(outside)


def log_metric(key: str, value: float, step: int | None = None) -> None:
    """Record a metric value of the running step (``step`` orders epochs/rounds)."""
    tracker = _active("log_metric")
    tracker.metrics.append(
        MetricRecord(
            run_id=tracker.run_id,
            key=key,
            value=_number(key, value),
            step=step,
            execution_id=tracker.execution_id,
            timestamp=utcnow(),
        )
    )


def _number(key: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"metric {key!r} must be a number, got {value!r} ({type(value).__name__})"
        ) from exc
    if math.isnan(number) and not isinstance(value, float):
        raise ParameterError(f"metric {key!r} is NaN")
    return number


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


# -- for components, which also run as plain functions ---------------------------------


def track_metric(key: str, value: float, step: int | None = None) -> None:
    """:func:`log_metric` when a step is running here; nothing when the function is
    called directly, outside a run (a bad value still raises inside a run).

    >>> track_metric("rows", 10)  # outside a run: nothing to record
    """
    if _tracker.get() is not None:
        log_metric(key, value, step=step)


def track_param(key: str, value: object) -> None:
    """:func:`log_param` when a step is running here; nothing outside a run."""
    if _tracker.get() is not None:
        log_param(key, value)


def track_tag(key: str, value: object) -> None:
    """:func:`set_tag` when a step is running here; nothing outside a run."""
    if _tracker.get() is not None:
        set_tag(key, value)


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


def record_input(name: str, artifact_id: str) -> None:
    """Record artifact ``artifact_id``, which the running step found by itself (a
    registered model it resolved), as its input ``name``, so lineage reaches it.

    >>> record_input("model", version.artifact_id)  # doctest: +SKIP
    """
    tracker = _active("record_input")
    workspace = current_workspace()
    workspace.metadata.add_events([EventRecord(tracker.execution_id, artifact_id, "input", name)])


# -- child executions ------------------------------------------------------------------


class ChildExecutions:
    """Records work that one running step started itself (tuning trials, shards) as
    executions of the step's run, named ``<step>/<name>`` and tagged
    ``ctloop.parent_execution`` with the step's execution id. Bound to the step when
    made, so a callback in another thread records for the right step.

    >>> children = child_executions()  # doctest: +SKIP
    >>> children.record("trial-0", status="succeeded", started_at=t0,
    ...                 parameters={"max_depth": 4}, metrics=[("score", 0.91, None)])  # doctest: +SKIP
    """

    def __init__(self, tracker: Tracker) -> None:
        if tracker.workspace is None:
            raise CtloopError(
                f"step '{tracker.step}' runs without a workspace, so it cannot record "
                "child executions; run it in a pipeline"
            )
        self._tracker = tracker
        self._metadata = tracker.workspace.metadata

    @property
    def parent(self) -> str:
        """The id of the step execution the children belong to."""
        return self._tracker.execution_id

    def record(
        self,
        name: str,
        *,
        status: str,
        started_at: datetime,
        ended_at: datetime | None = None,
        parameters: Mapping[str, Any] | None = None,
        metrics: Sequence[tuple[str, float, int | None]] = (),
        tags: Mapping[str, str] | None = None,
        error: str | None = None,
        function: str = "",
    ) -> str:
        """Record one finished child (``status``: ``succeeded``, ``failed`` or
        ``skipped``) with its parameters (also logged as params), ``metrics`` as
        ``(key, value, step)`` and ``tags``; returns the child's execution id."""
        tracker = self._tracker
        values = dict(parameters or {})
        execution = ExecutionRecord(
            id=new_id(),
            run_id=tracker.run_id,
            step=f"{tracker.step}/{name}" if tracker.step else name,
            function=function,
            code_hash="",
            cache_key="",
            status=ExecutionStatus.RUNNING,
            parameters=json.loads(json.dumps(values, default=str)),
            started_at=started_at,
        )
        run_id, child = tracker.run_id, execution.id
        self._metadata.create_execution(execution)
        self._metadata.complete_execution(
            child,
            status=status,
            ended_at=ended_at or utcnow(),
            params=[ParamRecord(run_id, k, str(v), child) for k, v in values.items()],
            metrics=[
                MetricRecord(run_id, key, _number(key, value), step, child)
                for key, value, step in metrics
            ],
            tags=[
                TagRecord(run_id, k, str(v), child)
                for k, v in {PARENT_EXECUTION_TAG: tracker.execution_id, **(tags or {})}.items()
            ],
            error=error,
        )
        return child


def child_executions() -> ChildExecutions:
    """A recorder of child executions for the step running here (raises outside one)."""
    return ChildExecutions(_active("child_executions"))


def record_child_execution(name: str, **details: Any) -> str:
    """Record one child execution of the running step; see :meth:`ChildExecutions.record`.

    >>> record_child_execution("shard-3", status="succeeded", started_at=t0)  # doctest: +SKIP
    """
    return child_executions().record(name, **details)
