"""Ingesting a file source's spans into the workspace as data versions.

Each ingestion that finds something new makes the next version of the data set named
after the source (``ctloop data versions flights``). A version is a folder with one
subfolder per span (``span=2013-03-01/…``) and ``_spans.json``, which gives each span's
own version: 1 when it first arrived, one more each time its files changed inside the
source's ``late_window`` (a late re-ingest), and the source's schema. Files are stored
content-addressed, and a new version names the blobs of the spans it keeps, so a span
that did not change is neither read, hashed nor stored again.

What is looked at on each run: spans never ingested (all of them, so a backfill is the
same command), and spans within ``late_window`` of the newest span. A span that
vanished from the landing folder stays in the data set: landing folders get cleaned.

Two ingesters of one source at once store each span once: a version is added as a
compare-and-set on the version it was built from, so the slower one finds it was beaten,
reads the new version and stores only what is still new (often nothing). A killed
ingester leaves blobs nobody names (``ctloop gc`` removes them) and no version.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.artifacts._data_versions import record_data_version
from ctloop.artifacts._snapshot import snapshot_files
from ctloop.errors import ConfigError, ConflictError, DataVersionError, NotFoundError
from ctloop.ingest._checks import file_schema, schema_break
from ctloop.ingest._spans import (
    LandedFile,
    discover,
    display,
    expected_between,
    span_time,
)
from ctloop.ingest._spec import AnySource, SourceSpec, SqlSourceSpec
from ctloop.store.records import FileEntry

if TYPE_CHECKING:
    from ctloop.store.records import ArtifactRecord
    from ctloop.store.workspace import Workspace

__all__ = [
    "MANIFEST",
    "IngestResult",
    "SourceStatus",
    "ingest_source",
    "source_status",
    "span_versions",
]

#: the file in each version that describes its spans
MANIFEST = "_spans.json"
_PREFIX = "span="
#: how often an ingester that lost the race to add a version reads again and retries
_CONFLICT_RETRIES = 20
#: threads that read, hash and store a run's files at once
_STORE_THREADS = 8
#: files up to this size are read into memory once (at most one per thread at a time)
_IN_MEMORY = 16 << 20


@dataclass(frozen=True)
class IngestResult:
    """What one ingestion of a source did."""

    source: str
    version: int | None  # the data set's version now (None: nothing ingested yet)
    new_spans: list[str] = field(default_factory=list)
    late_spans: list[str] = field(default_factory=list)  # re-ingested: files changed
    missing: list[str] = field(default_factory=list)  # expected but not there
    failed: dict[str, str] = field(default_factory=dict)  # span → why it was not stored
    unchanged: bool = True
    rows: int | None = None  # a SQL source: rows read past the watermark
    watermark: str | None = None  # a SQL source: the cursor's largest value ingested

    def summary(self) -> str:
        """One line for a person."""
        if self.unchanged:
            text = f"{self.source}: nothing new"
            if self.version is not None:
                text += f" (version {self.version})"
            if self.watermark is not None:
                text += f", watermark {self.watermark}"
        elif self.rows is not None:
            text = (
                f"{self.source}: version {self.version}, {self.rows:,} new row(s) "
                f"(span {self.new_spans[0]}), watermark {self.watermark}"
            )
        else:
            text = f"{self.source}: version {self.version}, {len(self.new_spans)} new span(s)"
            if self.new_spans:
                text += f" ({_range(self.new_spans)})"
            if self.late_spans:
                text += f", {len(self.late_spans)} late re-ingest(s) ({', '.join(self.late_spans)})"
        return text


@dataclass(frozen=True)
class SourceStatus:
    """Where a source stands: what is ingested, what is waiting, what is missing."""

    source: str
    version: int | None
    spans: int
    watermark: str | None  # the newest span ingested
    pending: list[str]  # landed but not ingested yet
    missing: list[str]
    late: dict[str, int]  # span → its version, for spans ingested more than once


def ingest_source(
    workspace: Workspace,
    spec: AnySource,
    *,
    staging_root: Path,
    start: str | None = None,
    end: str | None = None,
    accept_schema: bool = False,
) -> IngestResult:
    """Ingest the new (and late-changed) spans of ``spec``, between span keys ``start``
    and ``end`` when given (a backfill; spans in that range are looked at again even
    outside the late window). Returns what changed; nothing is written when nothing did.

    Each file of a span is checked first: a damaged file, or columns that break the
    schema of the spans stored before (``accept_schema`` takes the new one), fail that
    span alone (``failed``), which is then not stored and tried again next time.

    A SQL source (:class:`SqlSourceSpec`) stores the rows past its watermark as one new
    span (see :mod:`ctloop.ingest._sql_ingest`)."""
    if isinstance(spec, SqlSourceSpec):
        if start is not None or end is not None:
            raise ConfigError(
                f"source {spec.name!r} is a SQL source: it reads the rows past its "
                "watermark and has no dated spans to backfill; run `ctloop ingest run "
                f"{spec.name}`"
            )
        from ctloop.ingest._sql_ingest import ingest_rows

        return _retrying(spec.name, lambda: ingest_rows(workspace, spec, staging_root))
    return _retrying(
        spec.name,
        lambda: _ingest_files(
            workspace, spec, staging_root, start=start, end=end, accept_schema=accept_schema
        ),
    )


def _retrying(name: str, attempt: Callable[[], IngestResult]) -> IngestResult:
    """``attempt()`` again each time another ingester added a version first."""
    for _ in range(_CONFLICT_RETRIES):
        try:
            return attempt()
        except ConflictError:
            continue
    raise DataVersionError(
        f"source {name!r}: another ingester added a version {_CONFLICT_RETRIES} times "
        "while this one was storing; run `ctloop ingest run` again when it is done"
    )


def _ingest_files(
    workspace: Workspace,
    spec: SourceSpec,
    staging_root: Path,
    *,
    start: str | None,
    end: str | None,
    accept_schema: bool,
) -> IngestResult:
    landed = _in_range(discover(spec), start, end)
    previous = _previous(workspace, spec.name)
    stored = previous.spans if previous else {}
    versions = dict(previous.versions) if previous else {}
    recheck = _late_candidates(spec, stored, start, end)
    chosen: dict[str, list[LandedFile]] = {}
    for key, files in landed.items():
        if key not in stored or (key in recheck and _changed(files, stored[key], spec.options)):
            chosen[key] = files
    missing = _missing(spec, set(stored) | set(landed), start, end)
    if not chosen:
        return IngestResult(spec.name, previous.version if previous else None, missing=missing)
    schema = {} if accept_schema or previous is None else dict(previous.schema)
    staging_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=staging_root) as work:
        entries, failed, schema = _store_spans(workspace, spec, chosen, schema, Path(work))
    new = [k for k in chosen if k not in failed and k not in stored]
    late = [k for k in chosen if k not in failed and k in stored]
    shown_failed = {display(spec.grain, k): v for k, v in failed.items()}
    if not new and not late:
        version = previous.version if previous else None
        return IngestResult(spec.name, version, missing=missing, failed=shown_failed)
    for key in new:
        versions[key] = 1
    for key in late:
        versions[key] = versions.get(key, 1) + 1
    kept = [
        FileEntry(f"{_PREFIX}{key}/{name}", digest, size)
        for key, files in (previous.spans.items() if previous else ())
        if key not in new and key not in late
        for name, (digest, size) in files.items()
    ]
    manifest = {
        "source": spec.name,
        "span": spec.grain,
        "expect": spec.expect,
        "schema": schema,
        "spans": {k: {"version": versions[k]} for k in sorted(versions)},
    }
    data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    entries = [e for e in entries if e.path.split("/", 1)[0][len(_PREFIX) :] not in failed]
    entries += [*kept, FileEntry(MANIFEST, workspace.artifacts.put_bytes(data), len(data))]
    record = snapshot_files(spec.name, entries, workspace.artifacts)
    message = f"ingest: {len(new)} new span(s), {len(late)} late re-ingest(s)"
    added = record_data_version(
        spec.name,
        record,
        metadata=workspace.metadata,
        source=spec.files,
        message=message,
        expect_latest=previous.version if previous else 0,
    )
    return IngestResult(
        spec.name,
        added.version.version,
        new_spans=[display(spec.grain, k) for k in new],
        late_spans=[display(spec.grain, k) for k in late],
        missing=missing,
        failed=shown_failed,
        unchanged=False,
    )


def _store_spans(
    workspace: Workspace,
    spec: SourceSpec,
    chosen: Mapping[str, list[LandedFile]],
    schema: dict[str, str],
    work: Path,
) -> tuple[list[FileEntry], dict[str, str], dict[str, str]]:
    """Check each chosen span's files and put them into the artifact store: the new
    entries, the spans that failed (key → sentence) and the schema they follow.

    Files are read, hashed and stored by a few threads at once (the work is I/O and
    hashing, which release the GIL); the schema is then checked span by span, in order."""
    from concurrent.futures import ThreadPoolExecutor

    def store(key: str, file: LandedFile) -> tuple[dict[str, str], FileEntry] | str:
        shown = f"{file.location} of span {display(spec.grain, key)}"
        try:
            local = _local(file, spec.options, work)
            found, digest, size = _check_and_put(workspace, local, shown)
        except DataVersionError as exc:
            return str(exc)
        return found, FileEntry(f"{_PREFIX}{key}/{file.name}", digest, size)

    jobs = [(key, file) for key, files in chosen.items() for file in files]
    with ThreadPoolExecutor(_STORE_THREADS, thread_name_prefix="ctloop-ingest") as pool:
        done = list(pool.map(lambda job: (job[0], job[1], store(*job)), jobs))
    entries: list[FileEntry] = []
    failed: dict[str, str] = {}
    span_entries: dict[str, list[FileEntry]] = {}
    for key, file, outcome in done:
        if key in failed:
            continue
        if isinstance(outcome, str):
            failed[key] = outcome
            continue
        found, entry = outcome
        shown = f"{file.location} of span {display(spec.grain, key)}"
        problem = schema_break(found, schema, shown) if schema else None
        if problem:
            failed[key] = problem
            continue
        schema = schema or found
        span_entries.setdefault(key, []).append(entry)
    for key, kept in span_entries.items():
        if key not in failed:
            entries += kept
    return entries, failed, schema


def _check_and_put(
    workspace: Workspace, local: Path, shown: str
) -> tuple[dict[str, str], str, int]:
    """The file's schema, and its digest and size once stored. A file up to
    :data:`_IN_MEMORY` is read once: its schema comes from those bytes and they are
    hashed and written once (``put_file`` hashes a big file before copying it, to skip
    one already stored); a bigger one streams, so memory stays bounded."""
    if local.stat().st_size > _IN_MEMORY:
        found = file_schema(local, shown)
        digest, size = workspace.artifacts.put_file(local)
        return found, digest, size
    data = local.read_bytes()
    found = file_schema(local, shown, data=data)
    return found, workspace.artifacts.put_bytes(data), len(data)


def _local(file: LandedFile, options: dict[str, Any], work: Path) -> Path:
    """A local path holding ``file``: where it lies, or a download into ``work``."""
    if "://" not in file.location:
        return Path(file.location)
    import fsspec

    target = work / f"{uuid.uuid4().hex}-{Path(file.name).name}"  # keeps the suffix
    with fsspec.open(file.location, "rb", **options) as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    return target


def source_status(workspace: Workspace, spec: AnySource) -> SourceStatus:
    """The status of ``spec``: its data set's version, watermark, pending and missing spans
    (a SQL source's watermark is its cursor's largest value ingested; what is pending
    there only its next query knows)."""
    previous = _previous(workspace, spec.name)
    if isinstance(spec, SqlSourceSpec):
        return SourceStatus(
            source=spec.name,
            version=previous.version if previous else None,
            spans=len(previous.spans) if previous else 0,
            watermark=previous.watermark_text if previous else None,
            pending=[],
            missing=[],
            late={},
        )
    stored = previous.spans if previous else {}
    landed = discover(spec)
    pending = [display(spec.grain, k) for k in landed if k not in stored]
    keys = sorted(stored)
    return SourceStatus(
        source=spec.name,
        version=previous.version if previous else None,
        spans=len(stored),
        watermark=display(spec.grain, keys[-1]) if keys else None,
        pending=pending,
        missing=_missing(spec, set(stored) | set(landed), None, None),
        late={
            display(spec.grain, k): v
            for k, v in (previous.versions if previous else {}).items()
            if v > 1
        },
    )


def span_versions(workspace: Workspace, spec: AnySource) -> tuple[int | None, dict[str, int]]:
    """The source's data set version now and each stored span's own version, spans as a
    person writes them (``2013-03-01``): what a trigger compares to see new spans."""
    previous = _previous(workspace, spec.name)
    if previous is None:
        return None, {}
    return previous.version, {display(spec.grain, k): v for k, v in previous.versions.items()}


@dataclass(frozen=True)
class _Stored:
    version: int
    record: ArtifactRecord
    spans: dict[str, dict[str, tuple[str, int]]]  # span → name → (digest, size)
    versions: dict[str, int]
    schema: dict[str, str]
    watermark: dict[str, str] | None = None  # a SQL source's, as _sql.encode_watermark wrote
    span_rows: dict[str, int] = field(default_factory=dict)  # a SQL source's rows per span

    @property
    def watermark_text(self) -> str | None:
        return self.watermark["value"] if self.watermark else None


def previous_version(workspace: Workspace, name: str) -> _Stored | None:
    """The latest version of the source ``name`` as ingestion reads it (``None``: none)."""
    return _previous(workspace, name)


def _previous(workspace: Workspace, name: str) -> _Stored | None:
    try:
        latest = workspace.metadata.get_data_version(name)
    except NotFoundError:
        return None
    record = workspace.metadata.get_artifact(latest.artifact_id)
    spans: dict[str, dict[str, tuple[str, int]]] = {}
    manifest: Mapping[str, Any] = {}
    for entry in record.files:
        if entry.path == MANIFEST:
            manifest = json.loads(workspace.artifacts.get_bytes(entry.digest))
            continue
        head, _, rest = entry.path.partition("/")
        if not head.startswith(_PREFIX) or not rest:
            raise DataVersionError(
                f"data set {name!r} version {latest.version} was not made by `ctloop ingest` "
                f"(it holds {entry.path!r}); give the source another name in ctloop.yaml"
            )
        spans.setdefault(head[len(_PREFIX) :], {})[rest] = (entry.digest, entry.size)
    versions = {k: int(v["version"]) for k, v in dict(manifest.get("spans") or {}).items()}
    schema = {str(k): str(v) for k, v in dict(manifest.get("schema") or {}).items()}
    return _Stored(
        latest.version,
        record,
        spans,
        {k: versions.get(k, 1) for k in spans},
        schema,
        manifest.get("watermark"),
        {k: int(v["rows"]) for k, v in dict(manifest.get("spans") or {}).items() if "rows" in v},
    )


def _in_range(
    spans: dict[str, list[LandedFile]], start: str | None, end: str | None
) -> dict[str, list[LandedFile]]:
    return {
        k: v
        for k, v in spans.items()
        if (start is None or k >= start) and (end is None or k <= end)
    }


def _late_candidates(
    spec: SourceSpec, stored: Mapping[str, Any], start: str | None, end: str | None
) -> set[str]:
    """Stored spans to look at again: those in a backfill's range, and those within the
    late window of the newest stored span."""
    keys = sorted(stored)
    if start is not None or end is not None:
        return {k for k in keys if (start is None or k >= start) and (end is None or k <= end)}
    if not keys or spec.late_window is None or spec.grain == "number":
        return set()
    newest = span_time(spec.grain, keys[-1])
    assert isinstance(newest, datetime)
    cutoff = newest - spec.late_window
    return {k for k in keys if span_time(spec.grain, k) >= cutoff}  # type: ignore[operator]


def _changed(
    files: list[LandedFile], stored: Mapping[str, tuple[str, int]], options: dict[str, Any]
) -> bool:
    if {f.name for f in files} != set(stored):
        return True
    for landed in files:
        digest, size = stored[landed.name]
        if landed.size != size or _sha256(landed.location, options) != digest:
            return True
    return False


def _sha256(location: str, options: dict[str, Any]) -> str:
    import hashlib

    import fsspec

    digest = hashlib.sha256()
    with fsspec.open(location, "rb", **(options if "://" in location else {})) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _missing(spec: SourceSpec, present: set[str], start: str | None, end: str | None) -> list[str]:
    if spec.expect is None or not present:
        return []
    keys = sorted(present)
    first, last = start or keys[0], end or keys[-1]
    return [
        display(spec.grain, k)
        for k in expected_between(spec.grain, first, last)
        if k not in present
    ]


def _range(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]} … {keys[-1]}"
