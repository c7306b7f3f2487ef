"""Ingesting a SQL source: the rows past its watermark as the next numbered span.

Each run that finds rows makes the next version of the data set named after the source:
the spans of the version before (kept by reference, not copied) plus one new span
``span=0000000007/part-00000.parquet``. The version's ``_spans.json`` carries the new
watermark, so the watermark moves exactly when the version holding its rows is
committed: a run killed before that leaves the watermark where it was and no version,
and the next run reads the same rows again. Two ingesters racing on one source add
their versions as a compare-and-set; the one that lost reads past the winner's
watermark instead, so each row is stored once.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ctloop.artifacts._data_versions import record_data_version
from ctloop.artifacts._snapshot import snapshot_files
from ctloop.ingest._ingest import MANIFEST, IngestResult, previous_version
from ctloop.ingest._spans import display, span_key_of_number
from ctloop.ingest._spec import SqlSourceSpec
from ctloop.ingest._sql import decode_watermark, encode_watermark, read_new_rows
from ctloop.store.records import FileEntry

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["ingest_rows"]

_PREFIX = "span="


def ingest_rows(workspace: Workspace, spec: SqlSourceSpec, staging_root: Path) -> IngestResult:
    """Read ``spec``'s rows past its watermark and store them as the next version;
    nothing is written when the query returns no rows. A lost race raises
    :class:`~ctloop.errors.ConflictError` (the caller reads again and retries)."""
    previous = previous_version(workspace, spec.name)
    stored_mark = previous.watermark if previous else None
    staging_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ingest-", dir=staging_root) as work:
        found = read_new_rows(spec, decode_watermark(stored_mark), Path(work))
        if found.rows == 0:
            return IngestResult(
                spec.name,
                previous.version if previous else None,
                watermark=stored_mark["value"] if stored_mark else None,
            )
        number = max((int(k) for k in previous.spans), default=0) + 1 if previous else 1
        key = span_key_of_number(number)
        entries = [
            FileEntry(f"{_PREFIX}{key}/{path.name}", *workspace.artifacts.put_file(path))
            for path in found.files
        ]
    watermark = encode_watermark(found.watermark) or stored_mark
    versions = {**(previous.versions if previous else {}), key: 1}
    rows = {**(previous.span_rows if previous else {}), key: found.rows}
    kept = [
        FileEntry(f"{_PREFIX}{span}/{name}", digest, size)
        for span, files in (previous.spans.items() if previous else ())
        for name, (digest, size) in files.items()
    ]
    manifest = {
        "source": spec.name,
        "span": spec.grain,
        "expect": None,
        "schema": {**(previous.schema if previous else {}), **found.schema},
        "spans": {
            k: {"version": versions[k], **({"rows": rows[k]} if k in rows else {})}
            for k in sorted(versions)
        },
        "cursor": spec.cursor,
        "watermark": watermark,
    }
    data = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    entries += [*kept, FileEntry(MANIFEST, workspace.artifacts.put_bytes(data), len(data))]
    record = snapshot_files(spec.name, entries, workspace.artifacts)
    added = record_data_version(
        spec.name,
        record,
        metadata=workspace.metadata,
        source=spec.where,
        message=f"ingest: {found.rows} row(s) with {spec.cursor} up to {watermark['value']}"
        if watermark
        else f"ingest: {found.rows} row(s)",
        expect_latest=previous.version if previous else 0,
    )
    return IngestResult(
        spec.name,
        added.version.version,
        new_spans=[display(spec.grain, key)],
        unchanged=False,
        rows=found.rows,
        watermark=watermark["value"] if watermark else None,
    )
