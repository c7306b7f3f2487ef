"""In-memory runs, executions, artifacts, events, tracking data and data versions: the
fake of :class:`~ctloop.store.metadata.MetadataStore`, passing the same contract tests
as the SQL store.

What the database's constraints do, this store does by hand and with the same words: an
id prefix resolves as it does in SQL, an event must name stored artifacts, an execution
or a param must name a stored run, deleting a run deletes what hangs off it. Records
that other in-memory stores keep pointing into this one (the registry's model versions)
are :class:`MetadataReferences`: they keep their artifacts and runs from garbage
collection and lose a deleted run, as ``ON DELETE SET NULL`` does.

>>> from ctloop.store.records import new_id
>>> store = MemoryMetadataStore()
>>> store.list_runs(), store.has_artifact(new_id())
([], False)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from ctloop.store._metadata_rules import (
    EXECUTION_CHANGES,
    RUN_CHANGES,
    check_changes,
    check_status,
    data_version_artifacts,
    missing_artifacts,
    missing_execution,
    missing_record,
)
from ctloop.store._schema import to_utc
from ctloop.store.memory._records import (
    Keyed,
    by_id_or_prefix,
    converted,
    copied,
    kept_artifacts,
    missing_owner,
    refuse_duplicate,
    rows_of,
    stored,
)
from ctloop.store.metadata import ExecutionOutputs, MetadataStore
from ctloop.store.records import (
    ArtifactRecord,
    DataVersionRecord,
    EventRecord,
    ExecutionRecord,
    MetricRecord,
    ParamRecord,
    RunRecord,
    TagRecord,
)
from ctloop.store.statuses import ExecutionStatus, RunStatus

__all__ = ["MemoryMetadataStore", "MetadataReferences"]


class MetadataReferences(Protocol):
    """Records outside a :class:`MemoryMetadataStore` that point at its runs and
    artifacts, as the database's foreign keys do (the registry's model versions)."""

    def referenced_artifacts(self) -> dict[str, str]:
        """Artifact id → what keeps it (``model version 'flights' v3``): garbage
        collection keeps these artifacts and a delete of one is refused."""

    def referenced_runs(self) -> set[str]:
        """Ids of runs garbage collection keeps."""

    def forget_runs(self, run_ids: set[str], execution_ids: set[str]) -> None:
        """These runs and executions were deleted: drop the references to them."""


class MemoryMetadataStore(MetadataStore):
    """A :class:`MetadataStore` in dicts and lists behind one lock; ``url`` is
    ``memory://``. Every method is one step under ``lock`` (a reentrant lock): it
    happens completely or not at all, everything being checked before anything changes.
    The registry kept beside the store takes the same lock, so that a version's check
    of its artifact and its insert are one step, as in one database transaction.

    >>> store = MemoryMetadataStore()
    >>> store.referenced_artifact_ids()
    set()
    """

    def __init__(self) -> None:
        self.url = "memory://"
        self.lock = threading.RLock()
        self._runs: dict[str, RunRecord] = {}
        self._executions: dict[str, ExecutionRecord] = {}  # in order of creation
        self._artifacts: dict[str, ArtifactRecord] = {}
        self._events: list[EventRecord] = []
        self._params: Keyed = {}
        self._tags: Keyed = {}
        self._metrics: list[MetricRecord] = []
        self._data_versions: list[DataVersionRecord] = []
        self._references: list[MetadataReferences] = []

    def add_references(self, references: MetadataReferences) -> None:
        """Let ``references`` keep artifacts and runs of this store (see
        :class:`MetadataReferences`)."""
        with self.lock:
            self._references.append(references)

    # -- runs -------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        """Insert a new run."""
        check_status(run.status, RunStatus, "run")
        record = stored(run)
        with self.lock:
            refuse_duplicate(self._runs, record.id, "run")
            self._runs[record.id] = record

    def update_run(self, run_id: str, **changes: Any) -> None:
        """Change fields of a run; unknown field names raise ``ValueError``."""
        check_changes("run", changes, RUN_CHANGES, RunStatus)
        self._update(self._runs, run_id, converted(changes), "run")

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id or unique id prefix."""
        with self.lock:
            return copied(by_id_or_prefix(self._runs, run_id, "run"))

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        before: datetime | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first, optionally filtered; ``before`` keeps runs started earlier."""
        earlier = None if before is None else to_utc(before)
        with self.lock:
            runs = [
                run
                for run in self._runs.values()
                if (pipeline is None or run.pipeline == pipeline)
                and (status is None or run.status == status)
                and (earlier is None or run.started_at < earlier)
            ]
        runs.sort(key=lambda run: (run.started_at, run.id), reverse=True)
        return [copied(run) for run in runs[:limit]]

    def delete_runs(self, run_ids: Sequence[str]) -> None:
        """Delete runs with their executions, events and tracking data."""
        with self.lock:
            runs = {run_id for run_id in run_ids if run_id in self._runs}
            if not runs:
                return
            executions = {e.id for e in self._executions.values() if e.run_id in runs}
            for run_id in runs:
                del self._runs[run_id]
            for execution_id in executions:
                del self._executions[execution_id]
            self._events = [e for e in self._events if e.execution_id not in executions]
            for keyed in (self._params, self._tags):
                for key in [key for key in keyed if key[0] in runs]:
                    del keyed[key]
            self._metrics = [
                m
                for m in self._metrics
                if m.run_id not in runs and m.execution_id not in executions
            ]
            for references in self._references:
                references.forget_runs(runs, executions)

    # -- executions -------------------------------------------------------------------
    def create_execution(self, execution: ExecutionRecord) -> None:
        """Insert a new execution of a stored run."""
        check_status(execution.status, ExecutionStatus, "execution")
        record = stored(execution)
        with self.lock:
            refuse_duplicate(self._executions, record.id, "execution")
            self._require_runs([record.run_id], f"execution {record.id!r}")
            self._executions[record.id] = record

    def update_execution(self, execution_id: str, **changes: Any) -> None:
        """Change fields of an execution; unknown field names raise ``ValueError``."""
        check_changes("execution", changes, EXECUTION_CHANGES, ExecutionStatus)
        self._update(self._executions, execution_id, converted(changes), "execution")

    def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The execution with this id."""
        with self.lock:
            execution = self._executions.get(execution_id)
        if execution is None:
            raise missing_execution(execution_id)
        return copied(execution)

    def list_executions(self, run_id: str) -> list[ExecutionRecord]:
        """Executions of a run, oldest first (by creation)."""
        with self.lock:
            return [copied(e) for e in self._executions.values() if e.run_id == run_id]

    def _finish_execution(
        self, execution_id: str, changes: dict[str, Any], outputs: ExecutionOutputs
    ) -> None:
        changes = converted(changes)
        new_artifacts = [stored(artifact) for artifact in outputs.artifacts]
        new_metrics = [stored(metric) for metric in outputs.metrics]
        events, params, tags = outputs.events, outputs.params, outputs.tags
        with self.lock:
            execution = self._executions.get(execution_id)
            if execution is None:
                raise missing_record("execution", execution_id)
            fresh = self._fresh(new_artifacts)
            self._check_events(events, fresh)
            self._check_tracking(params, new_metrics, tags)
            self._executions[execution_id] = replace(execution, **changes)
            self._artifacts.update(fresh)
            self._events.extend(events)
            self._write_tracking(params, new_metrics, tags)

    def find_cached_execution(self, cache_key: str) -> ExecutionRecord | None:
        """The newest ``succeeded`` execution with this cache key; when garbage collection
        deleted every one, the newest ``cached`` one (it recorded the same outputs)."""
        with self.lock:
            newest_first = [
                e for e in reversed(self._executions.values()) if e.cache_key == cache_key
            ]
        for wanted in (ExecutionStatus.SUCCEEDED, ExecutionStatus.CACHED):
            for execution in newest_first:
                if execution.status == wanted:
                    return copied(execution)
        return None

    # -- artifacts and events ---------------------------------------------------------
    def put_artifacts(self, artifacts: Sequence[ArtifactRecord]) -> None:
        """Insert artifacts; ones whose id already exists are left as they are."""
        records = [stored(artifact) for artifact in artifacts]
        with self.lock:
            self._artifacts.update(self._fresh(records))

    def get_artifact(self, artifact_id: str) -> ArtifactRecord:
        """The artifact with this id or unique id prefix."""
        with self.lock:
            return copied(by_id_or_prefix(self._artifacts, artifact_id, "artifact"))

    def has_artifact(self, artifact_id: str) -> bool:
        """Whether an artifact with exactly this id is stored (the foreign-key check of
        the stores whose records name artifacts, such as log batches).

        >>> MemoryMetadataStore().has_artifact("0" * 32)
        False
        """
        with self.lock:
            return artifact_id in self._artifacts

    def list_artifacts(self, ids: Iterable[str] | None = None) -> list[ArtifactRecord]:
        """Artifacts with these ids (all when ``None``), oldest first; unknown ids are
        left out."""
        with self.lock:
            if ids is None:
                found = list(self._artifacts.values())
            else:
                wanted = dict.fromkeys(ids)
                found = [self._artifacts[i] for i in wanted if i in self._artifacts]
        found.sort(key=lambda artifact: (artifact.created_at, artifact.id))
        return [copied(artifact) for artifact in found]

    def delete_artifacts(self, artifact_ids: Sequence[str]) -> None:
        """Delete artifact records and the events that point at them; an artifact that is
        a data version, or that another record keeps (a model version), is refused."""
        wanted = set(artifact_ids)
        with self.lock:
            versions = [v for v in self._data_versions if v.artifact_id in wanted]
            if versions:
                raise data_version_artifacts(
                    (v.artifact_id, v.name, v.version) for v in versions[:5]
                )
            kept = {i: by for i, by in self._outside_artifacts().items() if i in wanted}
            if kept:
                raise kept_artifacts(kept)
            for artifact_id in wanted & self._artifacts.keys():
                del self._artifacts[artifact_id]
            self._events = [e for e in self._events if e.artifact_id not in wanted]

    def add_events(self, events: Sequence[EventRecord]) -> None:
        """Insert events; one that names an unknown artifact raises NotFoundError."""
        with self.lock:
            self._check_events(events, {})
            self._events.extend(events)

    def events_of_execution(self, execution_id: str) -> list[EventRecord]:
        """Inputs and outputs of an execution, in the order they were recorded."""
        with self.lock:
            return [e for e in self._events if e.execution_id == execution_id]

    def events_of_artifact(self, artifact_id: str) -> list[EventRecord]:
        """Every execution that read or wrote this artifact, in the order recorded."""
        with self.lock:
            return [e for e in self._events if e.artifact_id == artifact_id]

    def producer_of(self, artifact_id: str) -> tuple[str | None, str | None]:
        """``(run_id, execution_id)`` of the step that wrote the artifact (the first that
        succeeded, else the first), ``(None, None)`` when no event records one."""
        with self.lock:
            order = {execution_id: index for index, execution_id in enumerate(self._executions)}
            writers = [
                self._executions[e.execution_id]
                for e in self._events
                if e.artifact_id == artifact_id and e.kind == "output"
            ]
        if not writers:
            return None, None
        first = min(writers, key=lambda x: (x.status != ExecutionStatus.SUCCEEDED, order[x.id]))
        return first.run_id, first.id

    def referenced_artifact_ids(self) -> set[str]:
        """Ids of artifacts referenced by any event, data version or outside record."""
        with self.lock:
            return {e.artifact_id for e in self._events} | self.pinned_artifact_ids()

    def pinned_artifact_ids(self) -> set[str]:
        """Ids of artifacts that records other than events keep alive."""
        with self.lock:
            versions = {v.artifact_id for v in self._data_versions}
            return versions | set(self._outside_artifacts())

    def pinned_run_ids(self) -> set[str]:
        """Ids of runs that made a registered model version."""
        with self.lock:
            return set().union(*(r.referenced_runs() for r in self._references))

    # -- tracking ---------------------------------------------------------------------
    def log_batch(
        self,
        *,
        params: Sequence[ParamRecord] = (),
        metrics: Sequence[MetricRecord] = (),
        tags: Sequence[TagRecord] = (),
    ) -> None:
        """Write tracking data in one step; params and tags are upserted."""
        new_metrics = [stored(metric) for metric in metrics]
        with self.lock:
            self._check_tracking(params, new_metrics, tags)
            self._write_tracking(params, new_metrics, tags)

    def get_params(self, run_id: str) -> list[ParamRecord]:
        """Params of a run and its executions (run-level first, then by key)."""
        with self.lock:
            rows = sorted(rows_of(self._params, run_id))
        return [
            ParamRecord(run_id, key, value, execution or None) for execution, key, value in rows
        ]

    def get_metrics(self, run_id: str, key: str | None = None) -> list[MetricRecord]:
        """Metrics of a run and its executions, by key then step then time."""
        with self.lock:
            found = [
                m for m in self._metrics if m.run_id == run_id and (key is None or m.key == key)
            ]
        found.sort(key=lambda m: (m.key, m.step is not None, m.step or 0, m.timestamp))
        return found

    def get_tags(self, run_id: str) -> list[TagRecord]:
        """Tags of a run and its executions (run-level first, then by key)."""
        with self.lock:
            rows = sorted(rows_of(self._tags, run_id))
        return [TagRecord(run_id, key, value, execution or None) for execution, key, value in rows]

    # -- data versions ----------------------------------------------------------------
    def _add_data_version(
        self, name: str, artifact_id: str, next_version: Callable[[int], DataVersionRecord]
    ) -> DataVersionRecord:
        """The next version of ``name``, numbered and checked under the lock."""
        with self.lock:
            if artifact_id not in self._artifacts:
                raise missing_artifacts([artifact_id], f"data version of {name!r}")
            latest = max((v.version for v in self._data_versions if v.name == name), default=0)
            record = next_version(latest)
            self._data_versions.append(record)
        return record

    def list_data_versions(self, name: str | None = None) -> list[DataVersionRecord]:
        """Versions of ``name`` (of every name when ``None``), by name then version."""
        with self.lock:
            found = [v for v in self._data_versions if name is None or v.name == name]
        return sorted(found, key=lambda v: (v.name, v.version))

    # -- lifecycle --------------------------------------------------------------------
    def close(self) -> None:
        """Nothing to release: the records stay for as long as the store lives."""

    def __repr__(self) -> str:
        return f"MemoryMetadataStore(runs={len(self._runs)}, artifacts={len(self._artifacts)})"

    # -- checks, under the lock ---------------------------------------------------------
    def _update(
        self, records: dict[str, Any], record_id: str, changes: dict[str, Any], what: str
    ) -> None:
        with self.lock:
            record = records.get(record_id)
            if record is None:
                raise missing_record(what, record_id)
            records[record_id] = replace(record, **changes)

    def _fresh(self, artifacts: list[ArtifactRecord]) -> dict[str, ArtifactRecord]:
        """The artifacts whose id is not stored yet (the first of each id)."""
        fresh: dict[str, ArtifactRecord] = {}
        for artifact in artifacts:
            if artifact.id not in self._artifacts:
                fresh.setdefault(artifact.id, artifact)
        return fresh

    def _check_events(self, events: Sequence[EventRecord], fresh: Mapping[str, object]) -> None:
        wanted = dict.fromkeys(event.artifact_id for event in events)
        missing = [i for i in wanted if i not in self._artifacts and i not in fresh]
        if missing:
            raise missing_artifacts(missing, "an event")
        for event in events:
            if event.execution_id not in self._executions:
                raise missing_owner("an event", "execution", event.execution_id)

    def _check_tracking(
        self,
        params: Sequence[ParamRecord],
        metrics: Sequence[MetricRecord],
        tags: Sequence[TagRecord],
    ) -> None:
        for kind, records in (("param", params), ("metric", metrics), ("tag", tags)):
            self._require_runs((r.run_id for r in records), f"a {kind}")
        for metric in metrics:
            if metric.execution_id is not None and metric.execution_id not in self._executions:
                raise missing_owner(f"metric {metric.key!r}", "execution", metric.execution_id)

    def _require_runs(self, run_ids: Iterable[str], named_by: str) -> None:
        for run_id in run_ids:
            if run_id not in self._runs:
                raise missing_owner(named_by, "run", run_id)

    def _write_tracking(
        self,
        params: Sequence[ParamRecord],
        metrics: Sequence[MetricRecord],
        tags: Sequence[TagRecord],
    ) -> None:
        for keyed, records in ((self._params, params), (self._tags, tags)):
            for record in records:
                keyed[(record.run_id, record.execution_id or "", record.key)] = record.value
        self._metrics.extend(metrics)

    def _outside_artifacts(self) -> dict[str, str]:
        kept: dict[str, str] = {}
        for references in self._references:
            kept.update(references.referenced_artifacts())
        return kept
