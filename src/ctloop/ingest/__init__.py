"""Ingestion: a source's files, by span, into versioned data sets.

Declare sources in ``ctloop.yaml`` (see :mod:`ctloop.ingest._spec`), then::

    ctloop ingest run [SOURCE]        # new spans (and late changes) → the next data version
    ctloop ingest status              # watermark, pending and missing spans per source
    ctloop ingest backfill flights --from 2013-03-01 --to 2013-03-31

In a pipeline, a step reads the spans it wants from the source's data version::

    @step
    def load(data: Path) -> pd.DataFrame:
        return read_spans(data, "rolling:8")

    @pipeline
    def training():
        model = fit(load(data_version("flights")))

so lineage names the exact data version, and ``_spans.json`` inside it each span's version.

A SQL source (``sql:``, ``url:``, ``cursor:``) stores the rows past its watermark as one
more numbered span per run; ``read_spans(data, "all")`` reads every row ingested.
"""

from __future__ import annotations

from ctloop.ingest._ingest import (
    IngestResult,
    SourceStatus,
    ingest_source,
    source_status,
    span_versions,
)
from ctloop.ingest._read import SpanSelection, read_spans, select_spans
from ctloop.ingest._spec import AnySource, SourceSpec, SqlSourceSpec, parse_sources

__all__ = [
    "AnySource",
    "IngestResult",
    "SourceSpec",
    "SourceStatus",
    "SpanSelection",
    "SqlSourceSpec",
    "ingest_source",
    "parse_sources",
    "read_spans",
    "select_spans",
    "source_status",
    "span_versions",
]
