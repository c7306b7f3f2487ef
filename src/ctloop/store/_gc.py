"""Garbage collection: delete old runs, then every artifact and blob nothing kept
refers to. Runs that made a registered model version are kept, and so are artifacts
of data versions and model versions.

Blobs are shared (content-addressed): one is deleted only when no kept artifact lists
it. A blob that no record mentions at all may be a write in flight, so it is left
alone until it is older than the grace period.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ctloop.store.artifact_store import ArtifactStore
from ctloop.store.metadata import MetadataStore
from ctloop.store.records import ArtifactRecord, RunRecord, utcnow
from ctloop.store.statuses import RunStatus


@dataclass(frozen=True)
class GcReport:
    """What a garbage collection deleted (or, with ``dry_run``, would delete)."""

    dry_run: bool
    runs_deleted: list[str] = field(default_factory=list)
    runs_kept: int = 0
    artifacts_deleted: int = 0
    blobs_deleted: int = 0
    bytes_freed: int = 0


def select_runs(
    runs: list[RunRecord],
    *,
    older_than: timedelta | None,
    keep_last: int | None,
    now: datetime,
) -> list[RunRecord]:
    """Runs to delete: finished, older than ``older_than`` (if given) and not among the
    ``keep_last`` newest of their pipeline (if given). Neither given: none."""
    if older_than is None and keep_last is None:
        return []
    newest: dict[str, list[RunRecord]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r.started_at, reverse=True):
        newest[run.pipeline].append(run)
    kept_by_rank = {
        r.id
        for group in newest.values()
        for r in group[: keep_last if keep_last is not None else 0]
    }
    chosen = []
    for run in runs:
        if run.status == RunStatus.RUNNING or run.id in kept_by_rank:
            continue
        if older_than is not None and run.started_at > now - older_than:
            continue
        chosen.append(run)
    return chosen


def collect_garbage(
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    *,
    older_than: timedelta | None = None,
    keep_last: int | None = None,
    grace: timedelta = timedelta(hours=1),
    dry_run: bool = False,
    now: datetime | None = None,
) -> GcReport:
    """Delete runs by policy and the artifacts and blobs only they referenced."""
    now = now or utcnow()
    runs = metadata.list_runs()
    pinned_runs = metadata.pinned_run_ids()
    doomed = [
        r
        for r in select_runs(runs, older_than=older_than, keep_last=keep_last, now=now)
        if r.id not in pinned_runs
    ]
    doomed_ids = {r.id for r in doomed}
    doomed_executions = {x.id for run_id in doomed_ids for x in metadata.list_executions(run_id)}
    all_artifacts = {a.id: a for a in metadata.list_artifacts()}
    pinned = metadata.pinned_artifact_ids()
    referenced = metadata.referenced_artifact_ids()
    touched = {e.artifact_id for x in doomed_executions for e in metadata.events_of_execution(x)}
    freed = [
        a
        for a in all_artifacts.values()
        if a.id not in pinned
        and (
            a.id not in referenced
            or (a.id in touched and _only_used_by(metadata, a.id, doomed_executions))
        )
    ]
    freed_ids = {a.id for a in freed}
    kept_digests = _digests(a for a in all_artifacts.values() if a.id not in freed_ids)
    freed_digests = _digests(freed)
    blobs = [
        (digest, size)
        for digest, size, modified in artifacts.iter_blobs()
        if digest not in kept_digests and (digest in freed_digests or now - modified > grace)
    ]
    report = GcReport(
        dry_run=dry_run,
        runs_deleted=sorted(doomed_ids),
        runs_kept=len(runs) - len(doomed_ids),
        artifacts_deleted=len(freed),
        blobs_deleted=len(blobs),
        bytes_freed=sum(size for _, size in blobs),
    )
    if dry_run:
        return report
    metadata.delete_runs(sorted(doomed_ids))
    metadata.delete_artifacts(sorted(freed_ids))
    freed_bytes = report.bytes_freed
    for run_id in doomed_ids:
        freed_bytes += artifacts.delete_prefix(f"logs/{run_id}/")
    for digest, _ in blobs:
        artifacts.delete_blob(digest)
    freed_bytes += artifacts.clean_temp(grace)
    return GcReport(
        dry_run=False,
        runs_deleted=report.runs_deleted,
        runs_kept=report.runs_kept,
        artifacts_deleted=report.artifacts_deleted,
        blobs_deleted=report.blobs_deleted,
        bytes_freed=freed_bytes,
    )


def _only_used_by(metadata: MetadataStore, artifact_id: str, executions: set[str]) -> bool:
    """Whether every event of the artifact belongs to one of ``executions``
    (an artifact with no events at all is an orphan and is freed too)."""
    return all(e.execution_id in executions for e in metadata.events_of_artifact(artifact_id))


def _digests(records: object) -> set[str]:
    found: set[str] = set()
    for record in records:  # type: ignore[attr-defined]
        assert isinstance(record, ArtifactRecord)
        found.add(record.digest)
        found.update(f.digest for f in record.files)
    return found
