"""The metadata store interface.

Error contract for every implementation:

- a lookup of something that is not there raises :class:`~ctloop.errors.NotFoundError`
  naming what was looked for (and, for an ambiguous id prefix, the candidates);
- a database that cannot be reached raises :class:`~ctloop.errors.StoreUnavailableError`
  naming the URL (password hidden);
- every write method is one transaction: it happens completely or not at all, and
  transient lock conflicts (SQLite "database is locked", PostgreSQL serialization
  failures) are retried, never surfaced to the caller;
- methods return immutable records from :mod:`ctloop.store.records`;
- lists of runs are newest first, lists of executions oldest first.

Ids may be given in full or as a unique prefix of at least 4 characters wherever a
user types them (runs, artifacts).
"""

from __future__ import annotations

import json
import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ctloop.store._metadata_rules import (
    check_latest_data_version,
    completion_changes,
    missing_data_version,
)
from ctloop.store.records import (
    ArtifactRecord,
    DataVersionRecord,
    EventRecord,
    ExecutionRecord,
    MetricRecord,
    ParamRecord,
    RunRecord,
    TagRecord,
    utcnow,
)


def metric_order(metric: MetricRecord) -> tuple[bool, int, float]:
    """The sort key that puts a run's latest value of a metric last: the run's own values
    after its steps', then by ``step`` (none counts as before every index), then by time."""
    return (metric.execution_id is None, metric.step or 0, metric.timestamp.timestamp())


#: the comparisons :meth:`MetadataStore.search_runs` accepts in a condition
SEARCH_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
}
#: the run columns :meth:`MetadataStore.search_runs` sorts by (``duration``: seconds from
#: start to end, none while running)
SEARCH_COLUMNS = ("started_at", "duration", "pipeline", "status", "trigger")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def param_number(value: Any) -> float | None:
    """A run parameter's value as a number: a JSON number, or a string that reads as one
    (``"0.5"``, ``" 3 "``, ``"1e-3"``); ``None`` for anything else (booleans included).

    >>> param_number(2), param_number("0.5"), param_number(True), param_number("ridge")
    (2.0, 0.5, None, None)
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def param_text(value: Any) -> str | None:
    """A run parameter's value as text: a string as it is, anything else as its JSON
    (``true``, ``[1, 2]``); ``None`` for a missing or null value."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def param_holds(value: Any, op: str, wanted: str) -> bool:
    """Whether a run parameter's ``value`` meets ``op wanted``: compared as numbers when
    both read as numbers (:func:`param_number`), else as text (:func:`param_text`), where
    only ``=``/``==``/``!=`` can hold; a missing or null value never does.

    >>> param_holds(3, ">=", "2"), param_holds("ridge", "=", "ridge"), param_holds("a", "<", "b")
    (True, True, False)
    """
    check_search_op(op)
    if value is None:
        return False
    left, right = param_number(value), param_number(wanted)
    if left is not None and right is not None:
        return bool(SEARCH_OPS[op](left, right))
    if op in ("=", "==", "!="):
        return bool(SEARCH_OPS[op](param_text(value), wanted))
    return False


def param_sort_values(runs: Iterable[RunRecord], key: str) -> dict[str, Any]:
    """Each run's value of parameter ``key`` to sort by: numbers when every run that has
    one holds a number (:func:`param_number`), else every value as text; runs without it
    are left out."""
    raw = {run.id: run.parameters[key] for run in runs if run.parameters.get(key) is not None}
    numbers = {run_id: param_number(value) for run_id, value in raw.items()}
    if all(number is not None for number in numbers.values()):
        return numbers
    return {run_id: param_text(value) for run_id, value in raw.items()}


def check_search_op(op: str) -> None:
    """Raise ``ValueError`` naming the accepted operators unless ``op`` is one."""
    if op not in SEARCH_OPS:
        raise ValueError(f"unknown comparison {op!r}; use one of {' '.join(SEARCH_OPS)}")


#: the furthest page a search may start at: beyond any real workspace, and well inside
#: the 64-bit integers SQL's OFFSET takes
MAX_SEARCH_OFFSET = 2**31


def check_search_page(offset: int, limit: int | None) -> None:
    """Raise ``ValueError`` naming ``offset`` or ``limit`` when one is out of range.

    >>> check_search_page(2**40, 50)
    Traceback (most recent call last):
    ...
    ValueError: offset 1099511627776 is out of range; use 0 to 2147483648
    """
    if not 0 <= offset <= MAX_SEARCH_OFFSET:
        raise ValueError(f"offset {offset} is out of range; use 0 to {MAX_SEARCH_OFFSET}")
    if limit is not None and not 0 <= limit <= MAX_SEARCH_OFFSET:
        raise ValueError(f"limit {limit} is out of range; use 0 to {MAX_SEARCH_OFFSET}")


def check_search_sort(kind: str, key: str) -> None:
    """Raise ``ValueError`` unless ``(kind, key)`` is a sort the store can do."""
    if kind in ("metric", "param") and key:
        return
    if kind == "column" and key in SEARCH_COLUMNS:
        return
    raise ValueError(
        f"cannot sort runs by {kind} {key!r}; sort by a column "
        f"({', '.join(SEARCH_COLUMNS)}), a metric or a param"
    )


@dataclass(frozen=True)
class ExecutionOutputs:
    """What a finishing execution records with its final status (see
    :meth:`MetadataStore.complete_execution`)."""

    artifacts: Sequence[ArtifactRecord]
    events: Sequence[EventRecord]
    params: Sequence[ParamRecord]
    metrics: Sequence[MetricRecord]
    tags: Sequence[TagRecord]


class MetadataStore(ABC):
    """Runs, executions, artifacts, events, tracking data and data versions."""

    url: str

    # -- runs -------------------------------------------------------------------------
    @abstractmethod
    def create_run(self, run: RunRecord) -> None:
        """Insert a new run."""

    @abstractmethod
    def update_run(self, run_id: str, **changes: Any) -> None:
        """Change fields of a run (``status``, ``ended_at``, ``heartbeat_at``, ``error``,
        ``pid``, ``host``, ``user``); unknown field names raise ``ValueError``."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id or unique id prefix."""

    @abstractmethod
    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        before: datetime | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, optionally filtered; ``before`` keeps runs started earlier."""

    @abstractmethod
    def delete_runs(self, run_ids: Sequence[str]) -> None:
        """Delete runs with their executions, events, params, metrics and tags
        (not their artifacts: see :meth:`delete_artifacts`)."""

    # -- executions -------------------------------------------------------------------
    @abstractmethod
    def create_execution(self, execution: ExecutionRecord) -> None:
        """Insert a new execution."""

    @abstractmethod
    def update_execution(self, execution_id: str, **changes: Any) -> None:
        """Change fields of an execution (``status``, ``started_at``, ``ended_at``,
        ``heartbeat_at``, ``error``, ``log_uri``, ``cache_key``, ``cached_from``)."""

    @abstractmethod
    def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The execution with this id."""

    @abstractmethod
    def list_executions(self, run_id: str) -> list[ExecutionRecord]:
        """Executions of a run, oldest first (by creation)."""

    def complete_execution(
        self,
        execution_id: str,
        *,
        status: str,
        ended_at: datetime,
        artifacts: Sequence[ArtifactRecord] = (),
        events: Sequence[EventRecord] = (),
        params: Sequence[ParamRecord] = (),
        metrics: Sequence[MetricRecord] = (),
        tags: Sequence[TagRecord] = (),
        error: str | None = None,
        log_uri: str | None = None,
        cached_from: str | None = None,
    ) -> None:
        """Finish an execution in one transaction: new artifacts, events, tracking data
        and the final status. Artifacts whose id already exists are not inserted again."""
        changes = completion_changes(
            status, ended_at, error=error, log_uri=log_uri, cached_from=cached_from
        )
        outputs = ExecutionOutputs(artifacts, events, params, metrics, tags)
        self._finish_execution(execution_id, changes, outputs)

    @abstractmethod
    def _finish_execution(
        self, execution_id: str, changes: dict[str, Any], outputs: ExecutionOutputs
    ) -> None:
        """Set the checked ``changes`` of a finishing execution and insert its
        ``outputs``, all or nothing."""

    @abstractmethod
    def find_cached_execution(self, cache_key: str) -> ExecutionRecord | None:
        """The newest ``succeeded`` execution with this cache key, if any; when none is
        left (garbage collection deleted its run), the newest ``cached`` one, which recorded
        the same outputs. Failed, running, pending and skipped executions never count."""

    # -- artifacts and events ---------------------------------------------------------
    @abstractmethod
    def put_artifacts(self, artifacts: Sequence[ArtifactRecord]) -> None:
        """Insert artifacts; ones whose id already exists are left as they are."""

    @abstractmethod
    def get_artifact(self, artifact_id: str) -> ArtifactRecord:
        """The artifact with this id or unique id prefix."""

    @abstractmethod
    def list_artifacts(self, ids: Iterable[str] | None = None) -> list[ArtifactRecord]:
        """Artifacts with these ids (all artifacts when ``ids`` is ``None``)."""

    @abstractmethod
    def delete_artifacts(self, artifact_ids: Sequence[str]) -> None:
        """Delete artifact records (and any events that still point at them)."""

    @abstractmethod
    def add_events(self, events: Sequence[EventRecord]) -> None:
        """Insert events."""

    @abstractmethod
    def events_of_execution(self, execution_id: str) -> list[EventRecord]:
        """Inputs and outputs of an execution."""

    @abstractmethod
    def events_of_artifact(self, artifact_id: str) -> list[EventRecord]:
        """Every execution that read or wrote this artifact."""

    @abstractmethod
    def referenced_artifact_ids(self) -> set[str]:
        """Ids of artifacts referenced by any event, data version or other record that
        keeps an artifact alive (model versions, when the registry exists)."""

    @abstractmethod
    def pinned_artifact_ids(self) -> set[str]:
        """Ids of artifacts kept alive by records other than events (data versions, model
        versions): garbage collection never deletes them."""

    @abstractmethod
    def pinned_run_ids(self) -> set[str]:
        """Ids of runs that garbage collection keeps because a registered model version
        was made by them (so the model's lineage stays whole)."""

    # -- tracking ---------------------------------------------------------------------
    @abstractmethod
    def log_batch(
        self,
        *,
        params: Sequence[ParamRecord] = (),
        metrics: Sequence[MetricRecord] = (),
        tags: Sequence[TagRecord] = (),
    ) -> None:
        """Write tracking data in one transaction; a param or tag with an existing
        (run, execution, key) is overwritten."""

    @abstractmethod
    def get_params(self, run_id: str) -> list[ParamRecord]:
        """Params of a run and its executions."""

    @abstractmethod
    def get_metrics(self, run_id: str, key: str | None = None) -> list[MetricRecord]:
        """Metrics of a run and its executions, by key then step then time."""

    @abstractmethod
    def get_tags(self, run_id: str) -> list[TagRecord]:
        """Tags of a run and its executions."""

    def latest_metric_values(
        self, key: str, run_ids: Sequence[str] | None = None
    ) -> dict[str, float]:
        """Each run's latest value of metric ``key`` (of ``run_ids``, or of every run):
        the run's own value if it logged one, else its steps'; the highest ``step``, then
        the newest, wins. Runs without the metric are left out. Stores override this with
        one query; this default reads run by run."""
        found: dict[str, float] = {}
        for run_id in run_ids if run_ids is not None else [r.id for r in self.list_runs()]:
            points = self.get_metrics(run_id, key)
            if points:
                found[run_id] = max(points, key=metric_order).value
        return found

    def search_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        trigger: str | None = None,
        user: str | None = None,
        where: Sequence[tuple[str, str, float]] = (),
        param_where: Sequence[tuple[str, str, str]] = (),
        sort: tuple[str, str, bool] = ("column", "started_at", True),
        offset: int = 0,
        limit: int | None = None,
        started_after: datetime | None = None,
    ) -> tuple[list[RunRecord], int]:
        """A page of the runs that pass the filters (``started_after``: only runs started
        later than that time), every ``(metric, op, number)``
        condition of ``where`` (on the run's latest value, see
        :meth:`latest_metric_values`; ``op`` one of ``> >= < <= = == !=``) and every
        ``(param, op, value)`` condition of ``param_where`` (on the run's parameter, see
        :func:`param_holds`), and how many runs pass in all.

        ``sort`` is ``(kind, key, descending)``: kind ``column`` (``started_at``,
        ``duration``, ``pipeline``, ``status``, ``trigger``), ``metric`` or ``param``
        (numbers when every run's value is one, else text: :func:`param_sort_values`);
        ties go by ``(started_at, id)`` in the same direction, and runs without a value
        (no such metric or param, a duration while running) come last, newest first.
        A metric value of NaN sorts after every number and before the runs without the
        metric (MLflow's order), and passes no condition of ``where``; ``inf`` and
        ``-inf`` are numbers. Stores override this with one query; this default reads
        every run."""
        check_search_page(offset, limit)
        runs = [
            run
            for run in self.list_runs(pipeline=pipeline, status=status)
            if (trigger is None or run.trigger == trigger)
            and (user is None or run.user == user)
            and (started_after is None or run.started_at > started_after)
        ]
        for key, op, number in where:
            check_search_op(op)
            values = self.latest_metric_values(key, None)
            runs = [  # NaN passes no condition (a NULL in SQL)
                r
                for r in runs
                if r.id in values
                and not math.isnan(values[r.id])
                and SEARCH_OPS[op](values[r.id], number)
            ]
        for key, op, wanted in param_where:
            runs = [r for r in runs if param_holds(r.parameters.get(key), op, wanted)]
        kind, key, descending = sort
        check_search_sort(kind, key)
        if kind == "metric":
            found: dict[str, Any] = self.latest_metric_values(key, None)
        elif kind == "param":
            found = param_sort_values(runs, key)
        elif key == "duration":
            found = {run.id: run.duration_s for run in runs}
        else:
            found = {run.id: getattr(run, key) for run in runs}
        nan = [run for run in runs if _is_nan(found.get(run.id))]  # after numbers (MLflow)
        present = [run for run in runs if found.get(run.id) is not None]
        if nan:
            present = [run for run in present if not _is_nan(found[run.id])]
        absent = [run for run in runs if found.get(run.id) is None]
        present.sort(key=lambda run: (found[run.id], run.started_at, run.id), reverse=descending)
        ordered = present + nan + absent
        end = None if limit is None else offset + limit
        return ordered[offset:end], len(ordered)

    # -- data versions ----------------------------------------------------------------
    def add_data_version(
        self,
        name: str,
        artifact_id: str,
        *,
        source: str,
        message: str = "",
        expect_latest: int | None = None,
    ) -> DataVersionRecord:
        """Record the next version (1, 2, …) of ``name``; concurrent adds get distinct
        numbers.

        ``expect_latest`` makes the add a compare-and-set: it succeeds only while the
        latest version of ``name`` is that number (0: none yet), and raises
        :class:`~ctloop.errors.ConflictError` otherwise, adding nothing. Two writers that
        read version 3 and both add "version 4" then leave one version 4, not a 4 and a
        5 that both believe they hold the same new data."""

        def next_version(latest: int) -> DataVersionRecord:
            check_latest_data_version(name, latest, expect_latest)
            return DataVersionRecord(name, latest + 1, artifact_id, source, utcnow(), message)

        return self._add_data_version(name, artifact_id, next_version)

    @abstractmethod
    def _add_data_version(
        self, name: str, artifact_id: str, next_version: Callable[[int], DataVersionRecord]
    ) -> DataVersionRecord:
        """Store and return ``next_version(latest)``, ``latest`` being the latest version
        of ``name`` (0: none yet), in one step with the check that artifact
        ``artifact_id`` exists (:class:`~ctloop.errors.NotFoundError` if not)."""

    def get_data_version(self, name: str, version: int | None = None) -> DataVersionRecord:
        """A version of ``name`` (the latest when ``version`` is ``None``). Stores
        override this with one query; this default reads the versions of ``name``."""
        found = self.list_data_versions(name)
        if version is not None:
            found = [v for v in found if v.version == version]
        if not found:
            raise missing_data_version(name, version)
        return found[-1]

    @abstractmethod
    def list_data_versions(self, name: str | None = None) -> list[DataVersionRecord]:
        """Versions of ``name`` (of every name when ``None``), by name then version."""

    # -- lifecycle --------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release connections."""


def resolve_run(store: MetadataStore, ref: str) -> RunRecord:
    """The run named by ``ref``: an id, a unique id prefix, or ``latest``."""
    if ref == "latest":
        runs = store.list_runs(limit=1)
        if not runs:
            from ctloop.errors import NotFoundError

            raise NotFoundError("there are no runs yet; start one with `ctloop run FILE:PIPELINE`")
        return runs[0]
    return store.get_run(ref)
