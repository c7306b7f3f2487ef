"""Reading spans of an ingested source: the table a pipeline trains on.

A step gets the source's data version as a local folder (``data_version("flights")``)
and picks its spans with :func:`read_spans`: ``"latest"``, ``"all"``, ``"rolling:8"``
(the newest eight spans) or a range ``"2013-03-01..2013-03-31"``. When the source
expects every span (``expect: daily``), a selection with a gap is refused, so a
pipeline never trains on yesterday's data believing it is today's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import DataVersionError
from ctloop.ingest._ingest import MANIFEST
from ctloop.ingest._spans import display, expected_between, parse_span

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SpanSelection", "read_spans", "select_spans"]

_PREFIX = "span="


@dataclass(frozen=True)
class SpanSelection:
    """The spans a selection names, oldest first, with each one's version."""

    source: str
    spans: list[str]
    versions: dict[str, int]

    def describe(self) -> str:
        """``2013-03-01 … 2013-03-08 (8 spans)``, for tags and messages."""
        if not self.spans:
            return "(no spans)"
        if len(self.spans) == 1:
            return self.spans[0]
        return f"{self.spans[0]} … {self.spans[-1]} ({len(self.spans)} spans)"


def select_spans(folder: Path, spans: str = "latest") -> SpanSelection:
    """The spans of the ingested ``folder`` that ``spans`` names."""
    manifest = _manifest(folder)
    grain, expect = manifest["span"], manifest.get("expect")
    versions = {k: int(v["version"]) for k, v in manifest["spans"].items()}
    keys = sorted(versions)
    chosen = _choose(keys, spans, grain)
    if expect and chosen:
        wanted = expected_between(grain, chosen[0], chosen[-1])
        if spans.startswith("rolling:"):
            wanted = expected_between(grain, keys[0], keys[-1])[-int(spans.split(":")[1]) :]
        gaps = [display(grain, k) for k in wanted if k not in versions]
        if gaps:
            raise DataVersionError(
                f"source {manifest['source']!r} expects {expect} spans, but {spans!r} has "
                f"gaps: {', '.join(gaps[:10])}{' …' if len(gaps) > 10 else ''}; ingest them "
                f"(`ctloop ingest backfill {manifest['source']} --from … --to …`) or pick "
                "another range"
            )
    return SpanSelection(
        manifest["source"],
        [display(grain, k) for k in chosen],
        {display(grain, k): versions[k] for k in chosen},
    )


def read_spans(
    folder: Path, spans: str = "latest", *, span_column: str | None = None
) -> pd.DataFrame:
    """One table of the spans that ``spans`` names (Parquet, CSV or JSON lines files),
    with each row's span in ``span_column`` when given.

    >>> frame = read_spans(Path(".ctloop-data/flights"), "rolling:8")  # doctest: +SKIP
    """
    import pandas as pd

    selection = select_spans(folder, spans)
    manifest = _manifest(folder)
    grain = manifest["span"]
    frames = []
    for shown in selection.spans:
        key = parse_span(grain, shown, "span")
        for file in sorted((folder / f"{_PREFIX}{key}").rglob("*")):
            if file.is_file():
                frame = _read_file(file)
                if span_column is not None:
                    frame[span_column] = shown
                frames.append(frame)
    if not frames:
        raise DataVersionError(f"{spans!r} of source {manifest['source']!r} holds no files")
    return pd.concat(frames, ignore_index=True)


def _manifest(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise DataVersionError(
            f"{folder} is not an ingested source (no {MANIFEST}); pass the data version "
            "that `ctloop ingest run` made, e.g. data_version('flights')"
        )
    return dict(json.loads(path.read_text()))


def _choose(keys: list[str], spans: str, grain: str) -> list[str]:
    if not keys:
        return []
    if spans == "latest":
        return keys[-1:]
    if spans == "all":
        return keys
    if spans.startswith("rolling:"):
        count = spans.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise DataVersionError(f"spans {spans!r}: write rolling:N with N ≥ 1 (rolling:8)")
        return keys[-int(count) :]
    if ".." in spans:
        low, _, high = spans.partition("..")
        first, last = parse_span(grain, low, "span"), parse_span(grain, high, "span")
        return [k for k in keys if first <= k <= last]
    raise DataVersionError(
        f"spans {spans!r} is not a selection; use latest, all, rolling:N or FIRST..LAST"
    )


def _read_file(file: Path) -> pd.DataFrame:
    import pandas as pd

    suffix = file.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(file)
    if suffix == ".csv":
        return pd.read_csv(file)
    if suffix in (".jsonl", ".json", ".ndjson"):
        return pd.read_json(file, lines=True)
    raise DataVersionError(
        f"{file.name} is neither Parquet, CSV nor JSON lines; name it .parquet, .csv or .jsonl"
    )
