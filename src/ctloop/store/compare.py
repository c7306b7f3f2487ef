"""Compare runs side by side, and read a run's metric history.

Rows are named by key. A pipeline parameter is named by itself (``degree``); a parameter
logged by a step with ``log_param`` is named ``STEP/KEY`` (``fit/degree``). Likewise a
metric logged by a step is named ``STEP/KEY`` (``score/mse``) and a metric logged on the
run itself by ``KEY``. A metric's value in a comparison is its *last* value: the one with
the highest ``step`` index (a metric logged without one counts as before every index),
the newest on a tie. A step served from the cache shows what the run it was cached from
logged.

>>> cmp = compare_runs(store, ["latest", "3f9c2a1b"])  # doctest: +SKIP
>>> [(row.key, row.values, row.differs) for row in cmp.metrics]  # doctest: +SKIP
[('fit/train_rows', (90.0, 90.0), False), ('score/mse', (0.02, 0.41), True)]
>>> [(p.step_name, p.key, p.value, p.step) for p in metric_history(store, "latest")]  # doctest: +SKIP
[('score', 'mse', 0.41, 0), ('score', 'mse', 0.41, 1), ('score', 'mse', 0.41, 2)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from ctloop.errors import NotFoundError, ParameterError
from ctloop.store.metadata import MetadataStore, resolve_run
from ctloop.store.records import ExecutionRecord, MetricRecord, RunRecord
from ctloop.store.statuses import ExecutionStatus


@dataclass(frozen=True)
class RunSummary:
    """One compared run: the columns' headings."""

    id: str
    pipeline: str
    status: str
    started_at: datetime
    duration_s: float | None
    trigger: str
    git_commit: str | None


@dataclass(frozen=True)
class ParamRow:
    """A parameter across runs: ``values`` has one entry per run (``None``: not set)."""

    key: str
    step_name: str | None
    name: str
    values: tuple[Any, ...]
    differs: bool


@dataclass(frozen=True)
class MetricRow:
    """A metric's last value across runs (``None``: not logged), with min and max."""

    key: str
    step_name: str | None
    name: str
    values: tuple[float | None, ...]
    min: float | None
    max: float | None
    differs: bool


@dataclass(frozen=True)
class RunComparison:
    """Runs side by side: parameter rows, then metric rows, in the order first seen."""

    runs: tuple[RunSummary, ...]
    params: tuple[ParamRow, ...]
    metrics: tuple[MetricRow, ...]

    def only_differences(self) -> RunComparison:
        """The same comparison keeping only the rows whose values differ.

        >>> cmp.only_differences().params  # doctest: +SKIP
        (ParamRow(key='degree', step_name=None, name='degree', values=(1, 2), differs=True),)
        """
        return replace(
            self,
            params=tuple(row for row in self.params if row.differs),
            metrics=tuple(row for row in self.metrics if row.differs),
        )


@dataclass(frozen=True)
class MetricPoint:
    """One logged metric value: the pipeline step that logged it (``None``: the run),
    the key, the value, its ``step`` index (epochs, rounds) and when it was logged."""

    step_name: str | None
    key: str
    value: float
    step: int | None
    timestamp: datetime


def compare_runs(store: MetadataStore, refs: Sequence[str]) -> RunComparison:
    """Compare two or more runs (ids, unique id prefixes, or ``latest``).

    Raises :class:`~ctloop.errors.ParameterError` for fewer than two distinct runs and
    :class:`~ctloop.errors.NotFoundError` for a run that does not exist.

    >>> compare_runs(store, ["4594aff2", "latest"]).runs[0].pipeline  # doctest: +SKIP
    'regression'
    """
    if len(refs) < 2:
        raise ParameterError(
            f"comparing needs two or more runs, got {len(refs)} ({', '.join(refs) or 'none'}); "
            "name the runs to compare, e.g. `ctloop runs compare latest 3f9c2a1b`"
        )
    runs = [resolve_run(store, ref) for ref in refs]
    _check_distinct(runs, refs)
    params = [_params_of(store, run) for run in runs]
    metrics = [_last_values(metric_history(store, run.id)) for run in runs]
    return RunComparison(
        runs=tuple(_summary(run) for run in runs),
        params=tuple(_param_row(key, params) for key in _union(params)),
        metrics=tuple(_metric_row(key, metrics) for key in _union(metrics)),
    )


def metric_history(
    store: MetadataStore, ref: str, key: str | None = None, step: str | None = None
) -> list[MetricPoint]:
    """Every value of a run's metrics, by pipeline step (in run order), key, index, time.

    ``key`` keeps one metric, ``step`` the metrics of one pipeline step; either one that
    the run does not have raises :class:`~ctloop.errors.NotFoundError` naming those it has.

    >>> [p.value for p in metric_history(store, "latest", key="loss")]  # doctest: +SKIP
    [0.9, 0.5, 0.3]
    """
    run = resolve_run(store, ref)
    executions = store.list_executions(run.id)
    points = _points(store, run, executions)
    if step is not None:
        steps = list(dict.fromkeys(x.step for x in executions))
        if step not in steps:
            raise NotFoundError(
                f"run {run.id[:8]} has no step {step!r}; its steps: {', '.join(steps) or '(none)'}"
            )
        points = [p for p in points if p.step_name == step]
    if key is not None:
        keys = sorted({p.key for p in points})
        points = [p for p in points if p.key == key]
        if not points:
            where = f"step {step!r} of run" if step else "run"
            raise NotFoundError(
                f"{where} {run.id[:8]} logged no metric {key!r}; "
                f"its metrics: {', '.join(keys) or '(none)'}"
            )
    return points


# -- gathering --------------------------------------------------------------------------
def _check_distinct(runs: list[RunRecord], refs: Sequence[str]) -> None:
    seen: dict[str, str] = {}
    for run, ref in zip(runs, refs, strict=True):
        if run.id in seen:
            raise ParameterError(
                f"{seen[run.id]!r} and {ref!r} both name run {run.id[:8]}; "
                "name each run to compare once"
            )
        seen[run.id] = ref


def _summary(run: RunRecord) -> RunSummary:
    return RunSummary(
        id=run.id,
        pipeline=run.pipeline,
        status=run.status,
        started_at=run.started_at,
        duration_s=run.duration_s,
        trigger=run.trigger,
        git_commit=run.git_commit,
    )


def _params_of(store: MetadataStore, run: RunRecord) -> dict[tuple[str | None, str], Any]:
    """Pipeline parameters, then parameters logged by steps (cached ones: by the source)."""
    found: dict[tuple[str | None, str], Any] = {(None, k): v for k, v in run.parameters.items()}
    for execution, source in _sources(store, store.list_executions(run.id)):
        for param in store.get_params(source.run_id):
            if param.execution_id == source.id:
                found[(execution.step, param.key)] = param.value
    return found


def _points(
    store: MetadataStore, run: RunRecord, executions: list[ExecutionRecord]
) -> list[MetricPoint]:
    order = {name: i for i, name in enumerate(dict.fromkeys(x.step for x in executions), 1)}
    by_run: dict[str, list[MetricRecord]] = {}
    own = by_run.setdefault(run.id, store.get_metrics(run.id))
    points = [_point(None, m) for m in own if m.execution_id is None]
    for execution, source in _sources(store, executions):
        if source.run_id not in by_run:
            by_run[source.run_id] = store.get_metrics(source.run_id)
        records = by_run[source.run_id]
        points += [_point(execution.step, m) for m in records if m.execution_id == source.id]
    return sorted(points, key=lambda p: (order.get(p.step_name or "", 0), p.key, *_when(p)))


def _sources(
    store: MetadataStore, executions: Iterable[ExecutionRecord]
) -> list[tuple[ExecutionRecord, ExecutionRecord]]:
    """Each execution with the one whose tracking data it has: itself, or for a cached
    step the execution it was cached from (skipped when garbage collection removed it)."""
    pairs = []
    for execution in executions:
        source = execution
        if execution.status == ExecutionStatus.CACHED and execution.cached_from:
            try:
                source = store.get_execution(execution.cached_from)
            except NotFoundError:
                continue
        pairs.append((execution, source))
    return pairs


def _point(step_name: str | None, metric: MetricRecord) -> MetricPoint:
    return MetricPoint(step_name, metric.key, metric.value, metric.step, metric.timestamp)


def _when(point: MetricPoint) -> tuple[bool, int, datetime]:
    return (point.step is not None, point.step or 0, point.timestamp)


def _last_values(points: list[MetricPoint]) -> dict[tuple[str | None, str], float]:
    last: dict[tuple[str | None, str], MetricPoint] = {}
    for point in points:
        key = (point.step_name, point.key)
        if key not in last or _when(point) >= _when(last[key]):
            last[key] = point
    return {key: point.value for key, point in last.items()}


# -- rows -------------------------------------------------------------------------------
def _union(per_run: list[dict[tuple[str | None, str], Any]]) -> list[tuple[str | None, str]]:
    keys: dict[tuple[str | None, str], None] = {}
    for found in per_run:
        keys.update(dict.fromkeys(found))
    return sorted(keys, key=lambda key: key[0] is not None)  # the run's own keys first


def _row_key(step_name: str | None, name: str) -> str:
    return name if step_name is None else f"{step_name}/{name}"


def _param_row(key: tuple[str | None, str], per_run: list[dict[Any, Any]]) -> ParamRow:
    values = tuple(found.get(key) for found in per_run)
    return ParamRow(_row_key(*key), key[0], key[1], values, _differ(values))


def _metric_row(key: tuple[str | None, str], per_run: list[dict[Any, float]]) -> MetricRow:
    values = tuple(found.get(key) for found in per_run)
    numbers = [v for v in values if v is not None and not math.isnan(v)]
    return MetricRow(
        key=_row_key(*key),
        step_name=key[0],
        name=key[1],
        values=values,
        min=min(numbers) if numbers else None,
        max=max(numbers) if numbers else None,
        differs=_differ(values),
    )


def _differ(values: tuple[Any, ...]) -> bool:
    """Whether the values are not all equal (NaN equals NaN; a missing value differs)."""
    first = values[0]
    return any(not _same(first, other) for other in values[1:])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)
