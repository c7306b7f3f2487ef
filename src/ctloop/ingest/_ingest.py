"""Ingesting a file source's spans into the workspace as data versions.

Each ingestion that finds something new makes the next version of the data set named
after the source (``ctloop data versions flights``). A version is a folder with one
subfolder per span (``span=2013-03-01/…``) and ``_spans.json``, which gives each span's
own version: 1 when it first arrived, one more each time its files changed inside the
source's ``late_window`` (a late re-ingest). Files are stored content-addressed, so a
span that did not change costs no space in the next version.

What is looked at on each run: spans never ingested (all of them, so a backfill is the
same command), and spans within ``late_window`` of the newest span. A span that
vanished from the landing folder stays in the data set: landing folders get cleaned.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import DataVersionError, NotFoundError
from ctloop.ingest._spans import (
    LandedFile,
    discover,
    display,
    expected_between,
    span_time,
)
from ctloop.ingest._spec import SourceSpec

if TYPE_CHECKING:
    from ctloop.store.records import ArtifactRecord
    from ctloop.store.workspace import Workspace

__all__ = ["MANIFEST", "IngestResult", "SourceStatus", "ingest_source", "source_status"]

#: the file in each version that describes its spans
MANIFEST = "_spans.json"
_PREFIX = "span="


@dataclass(frozen=True)
class IngestResult:
    """What one ingestion of a source did."""

    source: str
    version: int | None  # the data set's version now (None: nothing ingested yet)
    new_spans: list[str] = field(default_factory=list)
    late_spans: list[str] = field(default_factory=list)  # re-ingested: files changed
    missing: list[str] = field(default_factory=list)  # expected but not there
    unchanged: bool = True

    def summary(self) -> str:
        """One line for a person."""
        if self.unchanged:
            text = f"{self.source}: nothing new"
            if self.version is not None:
                text += f" (version {self.version})"
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
    spec: SourceSpec,
    *,
    staging_root: Path,
    start: str | None = None,
    end: str | None = None,
) -> IngestResult:
    """Ingest the new (and late-changed) spans of ``spec``, between span keys ``start``
    and ``end`` when given (a backfill; spans in that range are looked at again even
    outside the late window). Returns what changed; nothing is written when nothing did.
    """
    landed = _in_range(discover(spec), start, end)
    previous = _previous(workspace, spec.name)
    stored = previous.spans if previous else {}
    versions = dict(previous.versions) if previous else {}
    recheck = _late_candidates(spec, stored, start, end)
    new, late, chosen = [], [], {}
    for key, files in landed.items():
        if key not in stored:
            new.append(key)
            chosen[key] = files
        elif key in recheck and _changed(files, stored[key], spec.options):
            late.append(key)
            chosen[key] = files
    missing = _missing(spec, set(stored) | set(landed), start, end)
    if not chosen:
        return IngestResult(spec.name, previous.version if previous else None, missing=missing)
    for key in new:
        versions[key] = 1
    for key in late:
        versions[key] = versions.get(key, 1) + 1
    added = _write_version(workspace, spec, previous, chosen, versions, staging_root, new, late)
    return IngestResult(
        spec.name,
        added,
        new_spans=[display(spec.grain, k) for k in new],
        late_spans=[display(spec.grain, k) for k in late],
        missing=missing,
        unchanged=False,
    )


def source_status(workspace: Workspace, spec: SourceSpec) -> SourceStatus:
    """The status of ``spec``: its data set's version, watermark, pending and missing spans."""
    previous = _previous(workspace, spec.name)
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


@dataclass(frozen=True)
class _Stored:
    version: int
    record: ArtifactRecord
    spans: dict[str, dict[str, tuple[str, int]]]  # span → name → (digest, size)
    versions: dict[str, int]


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
    return _Stored(latest.version, record, spans, {k: versions.get(k, 1) for k in spans})


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


def _write_version(
    workspace: Workspace,
    spec: SourceSpec,
    previous: _Stored | None,
    chosen: Mapping[str, list[LandedFile]],
    versions: Mapping[str, int],
    staging_root: Path,
    new: list[str],
    late: list[str],
) -> int:
    """Lay out the next version (kept spans from their blobs, chosen ones from where
    they landed) in a staging folder, snapshot it, and record it."""
    from ctloop.artifacts.data_versions import add_data_version

    staging_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ingest-", dir=staging_root))
    try:
        folder = work / spec.name
        if previous is not None:
            for key, files in previous.spans.items():
                if key in chosen:
                    continue
                for name, (digest, _) in files.items():
                    local = workspace.artifacts.local_path(digest, work / "cache")
                    _place(str(local), folder / f"{_PREFIX}{key}" / name, {})
        for key, landed in chosen.items():
            for file in landed:
                _place(file.location, folder / f"{_PREFIX}{key}" / file.name, spec.options)
        manifest = {
            "source": spec.name,
            "span": spec.grain,
            "expect": spec.expect,
            "spans": {k: {"version": versions[k]} for k in sorted(versions)},
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        message = f"ingest: {len(new)} new span(s), {len(late)} late re-ingest(s)"
        added = add_data_version(
            spec.name,
            folder,
            metadata=workspace.metadata,
            artifacts=workspace.artifacts,
            staging_root=staging_root,
            message=message,
            source=spec.files,
        )
        return added.version.version
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _place(location: str, target: Path, options: dict[str, Any]) -> None:
    """Put the file at ``location`` (a local path or an fsspec URL) at ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if "://" not in location:
        from ctloop.artifacts.io import link_or_copy

        link_or_copy(Path(location), target)
        return
    import fsspec

    with fsspec.open(location, "rb", **options) as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


def _range(keys: list[str]) -> str:
    return keys[0] if len(keys) == 1 else f"{keys[0]} … {keys[-1]}"
